// Fused Adam step (PyTorch's rule), one thread per parameter element, in place:
//   g = grad + wd * p;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   p = p - step_size * m / (sqrt(v) / bias2_sqrt + eps),   step_size = lr / (1 - b1^t)
#include "common.cuh"

template <typename T>
__global__ void adam_update(T* __restrict__ p, const T* __restrict__ grad, T* __restrict__ m, T* __restrict__ v,
                            long long count, T step_size, T beta1, T beta2, T eps, T weight_decay, T bias2_sqrt) {
    // BEGIN SOLUTION exercise 8
    const long long i = global_index();
    if (i >= count) return;
    const T g = grad[i] + weight_decay * p[i];
    const T mi = beta1 * m[i] + (T(1) - beta1) * g;
    const T vi = beta2 * v[i] + (T(1) - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    p[i] -= step_size * mi / (sqrt(vi) / bias2_sqrt + eps);
    // END SOLUTION
}
