/* Return codes of the runtime: one convention for every C entry point.
 *
 * Kernels (tt_kernels.h, tt_train_kernels.h, and the helpers of tt_train_math.h)
 *   - A kernel whose inputs are all fixed by the compiler (shapes, strides, pads,
 *     quantization parameters, scratch sizes: checked when the model was compiled)
 *     returns void: it cannot fail. Every forward kernel is of this kind, and so are
 *     the elementwise and input-gradient training kernels.
 *   - A kernel that also takes values only known at run time (gradient bit width and
 *     range function, label, number of trained channels, scale factors computed on the
 *     device from the learning rate) returns int: TT_OK, or one of the codes below.
 *     On an error it has written nothing its comment does not name (weights and biases
 *     in particular are left untouched).
 *   No kernel allocates memory, prints, or talks to the board; the caller provides every
 *   buffer (scratch included).
 *
 * Flash drivers (tt_flash.h) return TT_OK, TT_ERR_ARG (slot, offset or length out of
 * range or misaligned) or TT_ERR_FLASH.
 *
 * The serial protocol (tt_proto.h)
 *   TT_ERR_COBS .. TT_ERR_APP there are wire codes: the code byte of an ERROR reply,
 *   fixed by host/PROTOCOL.md and host/protocol.py. The two sets share only the meaning
 *   of 0 (TT_OK: success; a device callback returns 0 or a wire code); their other
 *   values overlap (1 is TT_ERR_ARG here and TT_ERR_COBS on the wire), so a kernel
 *   status is never sent as a wire code: an application whose kernel or training step
 *   fails answers TT_ERR_APP with a short text (runtime_c/apps/device does).
 */
#ifndef TT_STATUS_H
#define TT_STATUS_H

#define TT_OK 0         /* success */
#define TT_ERR_ARG 1    /* bad bit width, range function, label, channel count or shape */
#define TT_ERR_FACTOR 2 /* a scale factor is negative, not finite or >= 2^30 */
#define TT_ERR_FLASH 3  /* flash driver (tt_flash.h): the controller reported an error or the
                          data did not read back as programmed */

#endif
