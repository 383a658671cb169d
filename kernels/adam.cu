// Adam (PyTorch's rule) in two kernels, both on the device so that a captured training step
// (minidl/capture.py) advances the step count t on every replay.
//
// adam_schedule: once per optimizer step (per run of stepped parameters), one thread per
// parameter i = first, ..., first + count - 1:
//   t = ++steps[i];  schedule[i] = (step_size, bias2_sqrt) = (lr / (1 - b1^t), sqrt(1 - b2^t))
// adam_update: then, per parameter, one thread per element, in place:
//   g = grad + wd * p;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   p = p - step_size * m / (sqrt(v) / bias2_sqrt + eps)
#include "common.cuh"

__global__ void adam_schedule(long long* __restrict__ steps, double* __restrict__ schedule, int first, int count,
                              double lr, double beta1, double beta2) {
    const long long k = global_index();
    if (k >= count) return;
    const long long i = first + k;
    const long long t = ++steps[i];
    schedule[2 * i] = lr / (1.0 - pow(beta1, (double)t));
    schedule[2 * i + 1] = sqrt(1.0 - pow(beta2, (double)t));
}

// sizes: p = count, grad = count, m = count, v = count, schedule = 2
template <typename T>
__global__ void adam_update(T* __restrict__ p, const T* __restrict__ grad, T* __restrict__ m, T* __restrict__ v,
                            long long count, const double* __restrict__ schedule, T beta1, T beta2, T eps,
                            T weight_decay) {
    const T step_size = T(schedule[0]), bias2_sqrt = T(schedule[1]);  // this parameter's, from adam_schedule
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
