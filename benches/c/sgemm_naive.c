/* The baseline a C compiler makes of a plain GEMM loop nest.
 *
 * C (m x n, row-major, overwritten) = op(A) op(B), where op(A) is A stored
 * m x k row-major (trans_a == 0) or k x m row-major (trans_a != 0), and
 * op(B) likewise k x n or n x k. Each layout gets the loop order a careful
 * programmer would write without intrinsics or blocking: i-p-j when the
 * innermost loop can run along a row of B and C (so the compiler
 * vectorises it), i-j-p with a dot product when B is transposed (left
 * unvectorised at -O3: reordering a float sum needs -ffast-math).
 */
#include <stddef.h>

void edgecl_bench_sgemm_naive(size_t m, size_t n, size_t k, const float *a, int trans_a,
                              const float *b, int trans_b, float *c) {
    if (trans_b) {
        /* op(B)[p, j] = b[j * k + p]: dot rows of op(A) with rows of b. */
        for (size_t i = 0; i < m; i++) {
            for (size_t j = 0; j < n; j++) {
                float acc = 0.0f;
                for (size_t p = 0; p < k; p++) {
                    float aip = trans_a ? a[p * m + i] : a[i * k + p];
                    acc += aip * b[j * k + p];
                }
                c[i * n + j] = acc;
            }
        }
        return;
    }
    /* Row i of C accumulates A[i, p] times row p of B. */
    for (size_t i = 0; i < m; i++) {
        float *ci = c + i * n;
        for (size_t j = 0; j < n; j++) ci[j] = 0.0f;
        for (size_t p = 0; p < k; p++) {
            float aip = trans_a ? a[p * m + i] : a[i * k + p];
            const float *bp = b + p * n;
            for (size_t j = 0; j < n; j++) ci[j] += aip * bp[j];
        }
    }
}
