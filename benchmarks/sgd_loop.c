/*
 * The SGD sweep of factorise.kernels.sgd_ratings.sgd_ratings_epoch, written as a
 * plain C loop: the reference that benchmarks/kernel_vs_c.py times the compiled
 * numba kernel against. Same arrays, same visiting order, same float32
 * arithmetic; the sum of squared errors is accumulated in double.
 *
 * The ratings are gathered 2048 at a time (users, items, values at order[s])
 * into small buffers, as the kernel does, and then, for each rating t = order[s]
 * in turn (u = users[t], i = items[t]):
 *
 *     e     = values[t] - (mu + bu[u] + bi[i] + P[u] . Q[i])
 *     bu[u] += lr_bias * (e - reg_bias * bu[u])
 *     bi[i] += lr_bias * (e - reg_bias * bi[i])
 *     P[u]  += lr * (e * Q[i] - reg * P[u])     (simultaneously: the Q[i]
 *     Q[i]  += lr * (e * P[u] - reg * Q[i])      update uses the old P[u])
 *
 * If the kernel's update changes, change the marked lines below to match;
 * the benchmark compares the two after one sweep and reports a mismatch.
 *
 * P and Q are C-ordered (n_users, k) and (n_items, k) float32 arrays.
 * Build: gcc -O3 -march=native -shared -fPIC sgd_loop.c -o sgd_loop.so
 */
#include <stdint.h>

double sgd_epoch(
    const int32_t *restrict users,
    const int32_t *restrict items,
    const float *restrict values,
    const int64_t *restrict order,
    int64_t n,
    float mu,
    float *restrict bu,
    float *restrict bi,
    float *restrict P,
    float *restrict Q,
    int32_t k,
    float lr,
    float reg,
    float lr_bias,
    float reg_bias)
{
    /* Like the kernel: gather GATHER ratings into small buffers, then update. */
    enum { GATHER = 2048 };
    int32_t cu[GATHER], ci[GATHER];
    float cv[GATHER];
    double sse = 0.0;
    for (int64_t start = 0; start < n; start += GATHER) {
        const int64_t m = n - start < GATHER ? n - start : GATHER;
        for (int64_t j = 0; j < m; j++) {
            const int64_t t = order[start + j];
            cu[j] = users[t];
            ci[j] = items[t];
            cv[j] = values[t];
        }
        for (int64_t s = 0; s < m; s++) {
            const int32_t u = cu[s];
            const int32_t i = ci[s];
            float *restrict p = P + (int64_t)u * k;
            float *restrict q = Q + (int64_t)i * k;

            float dot = 0.0f;
            for (int32_t j = 0; j < k; j++)
                dot += p[j] * q[j];
            /* --- the update: keep in step with sgd_update --- */
            const float e = cv[s] - (mu + bu[u] + bi[i] + dot);
            sse += (double)e * (double)e;
            bu[u] += lr_bias * (e - reg_bias * bu[u]);
            bi[i] += lr_bias * (e - reg_bias * bi[i]);
            for (int32_t j = 0; j < k; j++) {
                const float pj = p[j];
                const float qj = q[j];
                p[j] = pj + lr * (e * qj - reg * pj);
                q[j] = qj + lr * (e * pj - reg * qj);
            }
            /* --- end of the update --- */
        }
    }
    return sse;
}
