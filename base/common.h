/* common.h - the base every layer of Phalanx builds on, in one include: the error contract
 * (status.h), logging (log.h), aligned buffers (alloc.h), the clock (clock.h) and parameter
 * layouts (layers.h). base/ includes nothing of the rest of Phalanx; the thread pool (pool.h)
 * and the named random streams (rng.h) are included where they are used.
 */
#ifndef PX_COMMON_H
#define PX_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/layers.h"
#include "base/log.h"
#include "base/status.h"

#define PX_VERSION_STRING "0.1.0"

#endif
