// silu(x) = x * sigmoid(x) = x / (1 + e^-x), PyTorch's F.silu: one thread per element. Its
// gradient is written in ops on tensors (minidl/ops/silu.py), so it needs no kernel of its own.
#include "common.cuh"

// sizes: x = count, y = count
template <typename T>
__global__ void silu_forward(const T* __restrict__ x, T* __restrict__ y, long long count) {
    const long long i = global_index();
    if (i >= count) return;
    const T v = x[i], e = exp(-fabs(v));  // e^-|x| never overflows
    y[i] = v >= T(0) ? v / (T(1) + e) : v * e / (T(1) + e);
}
