/*
 * The SGD sweep of factorise.kernels.sgd_ratings.sgd_ratings_epoch, written as a
 * plain C loop: the reference that benchmarks/kernel_vs_c.py times the compiled
 * numba kernel against. Same arrays, same visiting order, same float32
 * arithmetic; the sum of squared errors is accumulated in double.
 *
 * For each rating t = order[s], s = 0 .. n - 1 (u = users[t], i = items[t]):
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
    double sse = 0.0;
    for (int64_t s = 0; s < n; s++) {
        const int64_t t = order[s];
        const int32_t u = users[t];
        const int32_t i = items[t];
        float *restrict p = P + (int64_t)u * k;
        float *restrict q = Q + (int64_t)i * k;

        float dot = 0.0f;
        for (int32_t j = 0; j < k; j++)
            dot += p[j] * q[j];
        /* --- the update: keep in step with sgd_ratings_epoch --- */
        const float e = values[t] - (mu + bu[u] + bi[i] + dot);
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
    return sse;
}
