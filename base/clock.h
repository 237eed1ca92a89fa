/* clock.h - the monotonic clock every deadline of a run is measured on, and the sleep that
 * polling loops use between polls. */
#ifndef PX_CLOCK_H
#define PX_CLOCK_H

/* Monotonic clock in milliseconds (double, sub-microsecond resolution). */
double px_now_ms(void);

/* Sleeps for `us` microseconds; used by polling loops so that waiting ranks leave the cores
 * to the ranks that compute (8 ranks share 2 cores on the reference machine). */
void px_sleep_us(unsigned us);

#endif
