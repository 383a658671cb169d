// Helpers shared by minidl's kernels. Every kernel is a template on T (float or double)
// and is compiled by NVRTC for the GPU and by g++ for the CPU emulator.
// Constants shared with Python come as -D options, so both sides always agree: MINIDL_BLOCK
// from minidl/runtime/modules.py for every file, a file's own (conv's tiles) from its op's define().
#pragma once

#ifndef MINIDL_BLOCK
#error "compile through minidl.runtime, which passes MINIDL_BLOCK and the other shared constants as -D options"
#endif

// The flat index of this thread in a 1-D launch.
__device__ __forceinline__ long long global_index() {
    return (long long)blockIdx.x * blockDim.x + threadIdx.x;
}

// Where flat index `index` of an (planes, rows, cols) array lies: plane = n * C + c.
struct Pixel {
    long long plane;
    int row, col;
};

__device__ __forceinline__ Pixel pixel_of(long long index, int rows, int cols) {
    Pixel px;
    px.col = (int)(index % cols);
    px.row = (int)((index / cols) % rows);
    px.plane = index / ((long long)cols * rows);
    return px;
}

// Sum of `value` over the block's MINIDL_BLOCK threads, returned to every thread.
// A fixed tree over shared memory: the same inputs always give the same bits.
template <typename T>
__device__ T block_sum(T value) {
    __shared__ T partial[MINIDL_BLOCK];
    partial[threadIdx.x] = value;
    __syncthreads();
    for (int half = MINIDL_BLOCK / 2; half > 0; half /= 2) {
        if ((int)threadIdx.x < half) partial[threadIdx.x] += partial[threadIdx.x + half];
        __syncthreads();
    }
    T total = partial[0];
    __syncthreads();  // partial may be reused by the caller's next block_sum
    return total;
}

// Dynamically sized shared memory (its size is given at launch).
#ifndef MINIDL_EMULATOR
extern __shared__ double minidl_dynamic_shared[];
#endif
template <typename T>
__device__ __forceinline__ T* dynamic_shared() {
    return reinterpret_cast<T*>(minidl_dynamic_shared);
}

// Stops the kernel: on a GPU with __trap() (the launch fails), on the emulator with `message`
// as the launch's error. The stubs of a student copy (python -m minidl.lab student) call it.
#ifndef MINIDL_EMULATOR
#define minidl_trap(message) __trap()
#endif
