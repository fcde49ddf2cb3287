/* CPU time consumed by the calling thread, in nanoseconds.
 *
 * Benches on a shared machine use it instead of wall time for
 * single-threaded runs: time slices given to other processes do not count.
 * Returns -1 where the clock is unavailable.
 */
#define _POSIX_C_SOURCE 199309L
#include <time.h>

long long edgecl_bench_thread_cpu_ns(void) {
    struct timespec t;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t) != 0) return -1;
    return (long long)t.tv_sec * 1000000000LL + (long long)t.tv_nsec;
}
