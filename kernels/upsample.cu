// upsample, nearest and bilinear (align_corners=False), forward and backward, as PyTorch's
// F.interpolate with scale_factor. x (N, C, H, W), y (N, C, HO, WO); scale = 1 / scale_factor.
//   nearest:  src = min(floor(dst * scale), in - 1)              (in float, as PyTorch)
//   bilinear: src = max((dst + 0.5) * scale - 0.5, 0), blending floor(src) and floor(src) + 1
// The backward is a gather: each input pixel sums the outputs it feeds, with their weights.
#include "common.cuh"

// The weight with which input index src contributes to output index dst along one axis.
template <typename T>
__device__ T interpolation_weight(int dst, int src, int in_size, double scale, int bilinear) {
    if (!bilinear) return min((int)floorf((float)dst * (float)scale), in_size - 1) == src ? T(1) : T(0);
    T s = ((T)dst + T(0.5)) * (T)scale - T(0.5);
    if (s < T(0)) s = T(0);
    const int lo = min((int)floor(s), in_size - 1), hi = min(lo + 1, in_size - 1);
    const T frac = s - (T)lo;
    return (lo == src ? T(1) - frac : T(0)) + (hi == src ? frac : T(0));
}

// The outputs (inclusive range) that input index src may feed along one axis.
__device__ __forceinline__ void fed_outputs(int src, double scale, int out_size, int* first, int* last) {
    *first = max((int)floor((src - 1) / scale) - 1, 0);
    *last = min((int)ceil((src + 2) / scale) + 1, out_size - 1);
}

// sizes: x = N*C*H*W, y = N*C*HO*WO
template <typename T>
__global__ void upsample_forward(const T* __restrict__ x, T* __restrict__ y, int N, int C, int H, int W,
                                 int HO, int WO, double scale_h, double scale_w, int bilinear) {
    const long long index = global_index();
    if (index >= (long long)N * C * HO * WO) return;
    const Pixel out = pixel_of(index, HO, WO);
    const long long plane = out.plane;
    const int p = out.row, q = out.col;
    T acc = T(0);
    // at most two source rows and columns carry weight: the floor and the next one
    T s_h = bilinear ? ((T)p + T(0.5)) * (T)scale_h - T(0.5) : (T)floorf((float)p * (float)scale_h);
    T s_w = bilinear ? ((T)q + T(0.5)) * (T)scale_w - T(0.5) : (T)floorf((float)q * (float)scale_w);
    const int h0 = min(max((int)floor(s_h), 0), H - 1), w0 = min(max((int)floor(s_w), 0), W - 1);
    for (int h = h0; h <= min(h0 + 1, H - 1); ++h) {
        const T wh = interpolation_weight<T>(p, h, H, scale_h, bilinear);
        if (wh == T(0)) continue;
        for (int v = w0; v <= min(w0 + 1, W - 1); ++v)
            acc += wh * interpolation_weight<T>(q, v, W, scale_w, bilinear) * x[(plane * H + h) * W + v];
    }
    y[index] = acc;
}

// sizes: gy = N*C*HO*WO, gx = N*C*H*W
template <typename T>
__global__ void upsample_backward(const T* __restrict__ gy, T* __restrict__ gx, int N, int C, int H, int W,
                                  int HO, int WO, double scale_h, double scale_w, int bilinear) {
    const long long index = global_index();
    if (index >= (long long)N * C * H * W) return;
    const Pixel in = pixel_of(index, H, W);
    const long long plane = in.plane;
    const int h = in.row, v = in.col;
    int p_first, p_last, q_first, q_last;
    fed_outputs(h, scale_h, HO, &p_first, &p_last);
    fed_outputs(v, scale_w, WO, &q_first, &q_last);
    T acc = T(0);
    for (int p = p_first; p <= p_last; ++p) {
        const T wh = interpolation_weight<T>(p, h, H, scale_h, bilinear);
        if (wh == T(0)) continue;
        for (int q = q_first; q <= q_last; ++q)
            acc += wh * interpolation_weight<T>(q, v, W, scale_w, bilinear) * gy[(plane * HO + p) * WO + q];
    }
    gx[index] = acc;
}
