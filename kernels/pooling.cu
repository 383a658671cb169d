// max_pool2d and avg_pool2d, forward and backward. x (N, C, H, W), y (N, C, HO, WO);
// window (KH, KW), stride (SH, SW), padding (PH, PW). Backward kernels are gathers: one
// thread per input element sums the windows that contain it (no atomics).
#include "common.cuh"

// The first and last output row whose window covers input row h (inclusive, may be empty).
__device__ __forceinline__ void covering(int h, int K, int S, int P, int HO, int* first, int* last) {
    const int lo = h + P - K + 1;
    *first = lo <= 0 ? 0 : (lo + S - 1) / S;
    *last = min((h + P) / S, HO - 1);
}

// Forward max: y is the window's maximum, argmax its position i*KW + j in the window
// (the first maximum in row-major order, as PyTorch). Padding never wins.
// sizes: x = N*C*H*W, y = N*C*HO*WO, argmax = N*C*HO*WO
template <typename T>
__global__ void max_pool2d_forward(const T* __restrict__ x, T* __restrict__ y, int* __restrict__ argmax,
                                   int N, int C, int H, int W, int KH, int KW, int SH, int SW, int PH, int PW,
                                   int HO, int WO) {
    const long long index = global_index();
    if (index >= (long long)N * C * HO * WO) return;
    // BEGIN SOLUTION exercise 5
    const Pixel out = pixel_of(index, HO, WO);
    const long long plane = out.plane;
    const int p = out.row, q = out.col;
    T best = T(0);
    int best_at = -1;
    for (int i = 0; i < KH; ++i) {
        const int row = p * SH - PH + i;
        if (row < 0 || row >= H) continue;
        for (int j = 0; j < KW; ++j) {
            const int col = q * SW - PW + j;
            if (col < 0 || col >= W) continue;
            const T v = x[(plane * H + row) * W + col];
            if (best_at < 0 || v > best || (isnan(v) && !isnan(best))) {  // the first NaN wins, as in PyTorch
                best = v;
                best_at = i * KW + j;
            }
        }
    }
    y[index] = best;
    argmax[index] = best_at;
    // END SOLUTION
}

// sizes: gy = N*C*HO*WO, argmax = N*C*HO*WO, gx = N*C*H*W
template <typename T>
__global__ void max_pool2d_backward(const T* __restrict__ gy, const int* __restrict__ argmax, T* __restrict__ gx,
                                    int N, int C, int H, int W, int KH, int KW, int SH, int SW, int PH, int PW,
                                    int HO, int WO) {
    const long long index = global_index();
    if (index >= (long long)N * C * H * W) return;
    // BEGIN SOLUTION exercise 5
    const Pixel in = pixel_of(index, H, W);
    const long long plane = in.plane;
    const int h = in.row, v = in.col;
    int p_first, p_last, q_first, q_last;
    covering(h, KH, SH, PH, HO, &p_first, &p_last);
    covering(v, KW, SW, PW, WO, &q_first, &q_last);
    T acc = T(0);
    for (int p = p_first; p <= p_last; ++p)
        for (int q = q_first; q <= q_last; ++q) {
            const long long out = (plane * HO + p) * WO + q;
            if (argmax[out] == (h + PH - p * SH) * KW + (v + PW - q * SW)) acc += gy[out];
        }
    gx[index] = acc;
    // END SOLUTION
}

// Forward average over KH*KW positions, padding counted as zeros (count_include_pad).
// sizes: x = N*C*H*W, y = N*C*HO*WO
template <typename T>
__global__ void avg_pool2d_forward(const T* __restrict__ x, T* __restrict__ y, int N, int C, int H, int W,
                                   int KH, int KW, int SH, int SW, int PH, int PW, int HO, int WO) {
    const long long index = global_index();
    if (index >= (long long)N * C * HO * WO) return;
    const Pixel out = pixel_of(index, HO, WO);
    const long long plane = out.plane;
    const int p = out.row, q = out.col;
    T acc = T(0);
    for (int i = 0; i < KH; ++i) {
        const int row = p * SH - PH + i;
        if (row < 0 || row >= H) continue;
        for (int j = 0; j < KW; ++j) {
            const int col = q * SW - PW + j;
            if (col >= 0 && col < W) acc += x[(plane * H + row) * W + col];
        }
    }
    y[index] = acc / T(KH * KW);
}

// sizes: gy = N*C*HO*WO, gx = N*C*H*W
template <typename T>
__global__ void avg_pool2d_backward(const T* __restrict__ gy, T* __restrict__ gx, int N, int C, int H, int W,
                                    int KH, int KW, int SH, int SW, int PH, int PW, int HO, int WO) {
    const long long index = global_index();
    if (index >= (long long)N * C * H * W) return;
    const Pixel in = pixel_of(index, H, W);
    const long long plane = in.plane;
    const int h = in.row, v = in.col;
    int p_first, p_last, q_first, q_last;
    covering(h, KH, SH, PH, HO, &p_first, &p_last);
    covering(v, KW, SW, PW, WO, &q_first, &q_last);
    T acc = T(0);
    for (int p = p_first; p <= p_last; ++p)
        for (int q = q_first; q <= q_last; ++q) acc += gy[(plane * HO + p) * WO + q];
    gx[index] = acc / T(KH * KW);
}
