"""compiler.ref.augment, the reference of the device app's history-round augmentation
(mirror, then pad-and-crop shift filled with the input zero point); the device's C twin is
checked against it end to end in test_device_e2e.py."""
import numpy as np
import pytest

from compiler.ref import augment as aug


def _image(h=6, w=7, c=2):
    return (np.arange(h * w * c) % 200 - 100).astype(np.int8).reshape(1, h, w, c)


def test_each_draw_is_a_mirror_then_a_shift_with_zero_point_fill():
    x = _image()
    h, w = 6, 7
    for step in range(100):
        mirror, dx, dy = aug.draw(seed=5, step=step, shift=2)
        out = aug.augment(x, -3, seed=5, step=step, shift=2)
        assert out.shape == x.shape and out.dtype == np.int8
        m = x[0, :, ::-1] if mirror else x[0]
        for y in range(h):
            for xx in range(w):
                sy, sx = y + dy, xx + dx
                want = m[sy, sx] if 0 <= sy < h and 0 <= sx < w else np.full(2, -3, np.int8)
                np.testing.assert_array_equal(out[0, y, xx], want)
    # every mirror and shift in [-2, 2]^2 occurs
    seen = {aug.draw(seed=5, step=step, shift=2) for step in range(1000)}
    assert seen == {(f, a, b) for f in (False, True) for a in range(-2, 3) for b in range(-2, 3)}


def test_draws_depend_on_seed_and_step_only():
    assert aug.draw(1, 10, 3) == aug.draw(1, 10, 3)
    assert len({aug.draw(1, s, 3) for s in range(40)}) > 10
    assert [aug.draw(1, s, 3) for s in range(20)] != [aug.draw(2, s, 3) for s in range(20)]
    mirror, dx, dy = aug.draw(1, 7, 0)
    assert dx == dy == 0
    x = _image()
    out = aug.augment(x, 0, seed=1, step=7, shift=0)
    np.testing.assert_array_equal(out, x[:, :, ::-1] if mirror else x)


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="augment_shift 4 out of range 0..3 for a 6x7 input"):
        aug.augment(_image(), 0, seed=1, step=0, shift=4)
    with pytest.raises(ValueError, match="one int8 NHWC input"):
        aug.augment(_image().astype(np.int16), 0, seed=1, step=0, shift=1)
    assert (aug.default_shift(128, 96), aug.max_shift(128, 96)) == (12, 48)


def test_replay_refuses_augment_where_the_device_does():
    """A flat input (1 x 1 x F: features, not an image) has nothing to mirror or shift: the
    device app refuses SET augment 1 for it, and the replay refuses the setting too."""
    import copy
    import dataclasses

    import specgen

    from compiler.autodiff import device_replay
    from compiler.autodiff import program as ad
    from compiler.autodiff import trainer as tr
    g = specgen.random_graph(4, hw=10, n_blocks=2, classes=5)
    prog = ad.build_program(g, ad.last_blocks(g, 1))
    flat = copy.deepcopy(g)
    t = flat.tensors[flat.inputs[0]]
    flat.tensors[flat.inputs[0]] = dataclasses.replace(t, shape=(1, 1, 1, 300))
    with pytest.raises(ValueError, match=r"augment: the input \(1, 1, 1, 300\) is not an image"):
        device_replay.replay(flat, prog, tr.TrainState(), [np.zeros(300, np.int8)], [0],
                             settings=device_replay.DeviceSettings(1, augment=True))
