// The CPU emulator's runtime: what a .cu kernel needs from CUDA, for g++.
//
// A launch runs the grid's blocks one after another, in a shuffled order (a GPU promises
// no order either), each with its dynamic shared memory filled with NaN bytes (a GPU
// promises no contents). Kernels instantiated for float run with denormals flushed to
// zero, as CuPy compiles them (-ftz=true). Inside a block every CUDA thread is
// a fiber with its own stack; a fiber runs until it reaches __syncthreads()
// or returns, and the barrier opens when every fiber of the block has reached it. A
// fiber that returns while others wait at a barrier is a divergent barrier: an error.
// __shared__ variables become static (one copy, shared by the block's fibers, as the
// blocks run one at a time). The build follows each declaration with shared_declared(), which
// fills the variable with 0xFF bytes (NaN in float and double, -1 in an int) the first time a
// thread of a block reaches it, as dynamic shared memory is filled before each block: a read
// of a slot no thread of the block wrote shows as a wrong result, as garbage would on a GPU.
// Built with -fsanitize=address, every array argument is copied into a buffer fenced by
// poisoned redzones, so an out-of-bounds access aborts
// with AddressSanitizer's report, followed by a line naming the kernel, block and thread.
// __trap() (a GPU's illegal-instruction stop) ends the launch with an error; minidl_trap(text)
// does the same with a message (on a GPU it is __trap()).
#pragma once
#define MINIDL_EMULATOR 1

#include <math.h>
#include <stdint.h>
#if !defined(__x86_64__)
#include <ucontext.h>
#endif

#include <algorithm>
#include <random>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__x86_64__)
#include <xmmintrin.h>
#define EMU_MXCSR 1
#endif

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define EMU_ASAN 1
#endif

using std::ceil;
using std::exp;
using std::fabs;
using std::floor;
using std::fmax;
using std::fmin;
using std::log;
using std::log1p;
using std::max;
using std::min;
using std::sqrt;

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};

namespace emu {

enum State { RUNNING, AT_BARRIER, DONE };

// Switching between the scheduler and a fiber. On x86-64 a switch saves the callee-saved
// registers on the old stack and loads the new stack pointer (a dozen instructions);
// elsewhere ucontext does it, but also saves the signal mask with a system call, which
// makes it about a hundred times slower.
#if defined(__x86_64__)
struct Context {
    void* sp = nullptr;
};
extern "C" void minidl_emu_switch(void** save_sp, void* load_sp);
asm(R"(
    .text
    .globl minidl_emu_switch
    .hidden minidl_emu_switch
    .type minidl_emu_switch, @function
minidl_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size minidl_emu_switch, .-minidl_emu_switch
)");
inline void switch_context(Context& from, Context& to) { minidl_emu_switch(&from.sp, to.sp); }
// A context whose first switch enters entry() on a fresh stack (entry never returns).
inline void start_context(Context& c, char* stack, size_t size, void (*entry)()) {
    void** sp = reinterpret_cast<void**>(reinterpret_cast<uintptr_t>(stack + size) & ~uintptr_t(15));
    *--sp = nullptr;                               // entry's return address: never used
    *--sp = reinterpret_cast<void*>(entry);        // where the switch's ret lands
    for (int i = 0; i < 6; ++i) *--sp = nullptr;  // rbp rbx r12 r13 r14 r15
    c.sp = sp;
}
#else
struct Context {
    ucontext_t uc;
};
inline void switch_context(Context& from, Context& to) { swapcontext(&from.uc, &to.uc); }
inline void start_context(Context& c, char* stack, size_t size, void (*entry)()) {
    getcontext(&c.uc);
    c.uc.uc_stack.ss_sp = stack;
    c.uc.uc_stack.ss_size = size;
    c.uc.uc_link = nullptr;
    makecontext(&c.uc, entry, 0);
}
#endif

struct Fiber {
    Context context;
    dim3 thread;
    State state;
    char* stack;
};

// One kernel instantiation, callable with an array of pointers to its arguments.
struct Entry {
    void (*invoke)(void* kernel, void** args);
    void* kernel;
    int nargs;
    const char* name;
};

template <typename... Args, size_t... I>
void invoke_unpacked(void (*kernel)(Args...), void** args, std::index_sequence<I...>) {
    kernel(*static_cast<std::remove_reference_t<Args>*>(args[I])...);
}

template <typename... Args>
void invoke(void* kernel, void** args) {
    invoke_unpacked(reinterpret_cast<void (*)(Args...)>(kernel), args, std::index_sequence_for<Args...>{});
}

template <typename... Args>
Entry entry(void (*kernel)(Args...), const char* name) {
    return Entry{&invoke<Args...>, reinterpret_cast<void*>(kernel), (int)sizeof...(Args), name};
}

constexpr size_t STACK_BYTES = 256 * 1024;
constexpr size_t REDZONE = 64;

inline Fiber* current = nullptr;
inline Context scheduler;
inline dim3 block_index, block_dim, grid_dim;
inline unsigned char* dynamic_shared_memory = nullptr;
inline const Entry* running = nullptr;
inline void** running_args = nullptr;
inline const char* trap_message = nullptr;  // set by trap(): the launch ends with this error
inline const void* scheduler_stack = nullptr;  // for AddressSanitizer's fiber bookkeeping
inline size_t scheduler_stack_size = 0;

inline void syncthreads() {
    current->state = AT_BARRIER;
#ifdef EMU_ASAN
    void* fake = nullptr;
    __sanitizer_start_switch_fiber(&fake, scheduler_stack, scheduler_stack_size);
    switch_context(current->context, scheduler);
    __sanitizer_finish_switch_fiber(fake, &scheduler_stack, &scheduler_stack_size);
#else
    switch_context(current->context, scheduler);
#endif
}

// The calling thread stops here; its block is abandoned and the launch fails with `message`.
[[noreturn]] inline void trap(const char* message) {
    trap_message = message;
    current->state = DONE;
#ifdef EMU_ASAN
    __sanitizer_start_switch_fiber(nullptr, scheduler_stack, scheduler_stack_size);
#endif
    switch_context(current->context, scheduler);  // never resumed
    __builtin_unreachable();
}

// Printed after AddressSanitizer's report: which CUDA thread made the bad access.
inline void report_thread() {
    if (running && current)
        std::fprintf(stderr, "minidl emulator: in kernel %s, block (%u, %u, %u), thread (%u, %u, %u)\n",
                     running->name, block_index.x, block_index.y, block_index.z, current->thread.x,
                     current->thread.y, current->thread.z);
}

inline void fiber_main() {
#ifdef EMU_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &scheduler_stack, &scheduler_stack_size);
#endif
    running->invoke(running->kernel, running_args);
    current->state = DONE;
#ifdef EMU_ASAN
    __sanitizer_start_switch_fiber(nullptr, scheduler_stack, scheduler_stack_size);
#endif
    switch_context(current->context, scheduler);  // never resumed
}

inline void resume(Fiber& fiber) {
    current = &fiber;
    fiber.state = RUNNING;
#ifdef EMU_ASAN
    void* fake = nullptr;
    __sanitizer_start_switch_fiber(&fake, fiber.stack, STACK_BYTES);
    switch_context(scheduler, fiber.context);
    __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#else
    switch_context(scheduler, fiber.context);
#endif
}

// Run one block to completion; returns an error message or nullptr.
inline const char* run_block(std::vector<Fiber>& fibers) {
    for (Fiber& f : fibers) {
        start_context(f.context, f.stack, STACK_BYTES, fiber_main);
        f.state = RUNNING;
    }
    for (;;) {
        size_t waiting = 0, done = 0;
        for (Fiber& f : fibers)
            if (f.state == RUNNING) resume(f);
        if (trap_message) return trap_message;
        for (Fiber& f : fibers) (f.state == DONE ? done : waiting) += 1;
        if (done == fibers.size()) return nullptr;
        if (done > 0) return "divergent __syncthreads(): some threads of a block returned while others wait at a barrier";
        for (Fiber& f : fibers) f.state = RUNNING;  // everyone arrived: open the barrier
    }
}

// A copy of `bytes` at `source` whose end abuts a poisoned redzone (and whose start
// follows one; the start is exact when bytes is a multiple of 8).
inline unsigned char* fenced_copy(const void* source, size_t bytes, unsigned char** raw_out) {
    const size_t pad = (8 - bytes % 8) % 8;
    unsigned char* raw = static_cast<unsigned char*>(std::malloc(bytes + pad + 2 * REDZONE));
    unsigned char* data = raw + REDZONE + pad;
    if (source) std::memcpy(data, source, bytes);
#ifdef EMU_ASAN
    ASAN_POISON_MEMORY_REGION(raw, REDZONE + pad);
    ASAN_POISON_MEMORY_REGION(data + bytes, REDZONE);
#endif
    *raw_out = raw;
    return data;
}

inline void release(unsigned char* raw, size_t bytes) {
    const size_t pad = (8 - bytes % 8) % 8;
#ifdef EMU_ASAN
    ASAN_UNPOISON_MEMORY_REGION(raw, bytes + pad + 2 * REDZONE);
#endif
    std::free(raw);
}

// Static __shared__ variables: each is filled with 0xFF bytes when the first thread of a block
// reaches its declaration (block_serial counts the blocks run; `filled` holds, per variable,
// the block it was last filled for).
inline unsigned long long block_serial = 0;
inline std::vector<std::pair<const void*, unsigned long long>> filled;

inline void shared_declared(void* variable, size_t bytes) {
    for (auto& [address, serial] : filled) {
        if (address == variable) {
            if (serial != block_serial) std::memset(variable, 0xFF, bytes), serial = block_serial;
            return;
        }
    }
    std::memset(variable, 0xFF, bytes);
    filled.emplace_back(variable, block_serial);
}

enum ArgKind { SCALAR = 0, ARRAY = 1, READONLY_ARRAY = 2 };

inline int launch(const Entry* entries, int count, int index, const unsigned* grid, const unsigned* block,
                  size_t shared_bytes, int nargs, void** args, const int* kinds, const size_t* sizes, char* error,
                  size_t error_size) {
    if (index < 0 || index >= count) {
        snprintf(error, error_size, "no kernel entry %d", index);
        return 1;
    }
    const Entry& e = entries[index];
    if (nargs != e.nargs) {
        snprintf(error, error_size, "%s takes %d arguments, the launch passed %d", e.name, e.nargs, nargs);
        return 1;
    }
    std::vector<void*> pointers(nargs), argv(nargs);
    std::vector<unsigned char*> raws(nargs, nullptr);
    for (int k = 0; k < nargs; ++k) {
        if (kinds[k] == SCALAR) {
            argv[k] = args[k];
        } else {
            pointers[k] = fenced_copy(*static_cast<void**>(args[k]), sizes[k], &raws[k]);
            argv[k] = &pointers[k];
        }
    }
    unsigned char* shared_raw = nullptr;
    dynamic_shared_memory = fenced_copy(nullptr, shared_bytes, &shared_raw);

    grid_dim = dim3{grid[0], grid[1], grid[2]};
    block_dim = dim3{block[0], block[1], block[2]};
    running = &e;
    running_args = argv.data();
    trap_message = nullptr;
#ifdef EMU_ASAN
    __sanitizer_set_death_callback(report_thread);
#endif
    std::vector<Fiber> fibers(block_dim.x * block_dim.y * block_dim.z);
    for (size_t t = 0; t < fibers.size(); ++t) {
        fibers[t].thread = dim3{unsigned(t % block_dim.x), unsigned(t / block_dim.x % block_dim.y),
                                unsigned(t / (block_dim.x * block_dim.y))};
        fibers[t].stack = static_cast<char*>(std::malloc(STACK_BYTES));
    }
    std::vector<dim3> order;
    order.reserve((size_t)grid_dim.x * grid_dim.y * grid_dim.z);
    for (unsigned z = 0; z < grid_dim.z; ++z)
        for (unsigned y = 0; y < grid_dim.y; ++y)
            for (unsigned x = 0; x < grid_dim.x; ++x) order.push_back(dim3{x, y, z});
    static std::mt19937 shuffler(20261123u);  // a fixed seed: runs repeat, launches differ
    std::shuffle(order.begin(), order.end(), shuffler);
#ifdef EMU_MXCSR
    const unsigned saved_csr = _mm_getcsr();
    if (std::strstr(e.name, "<float>")) _mm_setcsr(saved_csr | 0x8040);  // flush-to-zero, denormals-are-zero
#endif
    const char* failure = nullptr;
    for (size_t b = 0; b < order.size() && !failure; ++b) {
        block_index = order[b];
        if (shared_bytes) std::memset(dynamic_shared_memory, 0xFF, shared_bytes);  // NaN in float and double
        ++block_serial;
        failure = run_block(fibers);
    }
#ifdef EMU_MXCSR
    _mm_setcsr(saved_csr);
#endif
    for (Fiber& f : fibers) std::free(f.stack);
    release(shared_raw, shared_bytes);
    for (int k = 0; k < nargs; ++k) {
        if (kinds[k] == SCALAR) continue;
        if (kinds[k] == ARRAY && !failure) std::memcpy(*static_cast<void**>(args[k]), pointers[k], sizes[k]);
        release(raws[k], sizes[k]);
    }
    if (failure) {
        snprintf(error, error_size, "%s: %s", e.name, failure);
        return 1;
    }
    return 0;
}

}  // namespace emu

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __syncthreads() emu::syncthreads()
#define threadIdx (emu::current->thread)
#define blockIdx (emu::block_index)
#define blockDim (emu::block_dim)
#define gridDim (emu::grid_dim)
#define minidl_dynamic_shared (emu::dynamic_shared_memory)
#define __trap() emu::trap("__trap() called")
#define minidl_trap(message) emu::trap(message)

// AddressSanitizer's runtime arrives with the kernel library (dlopen), not first in the
// process, and reads its options before Python could set them: give them here.
extern "C" __attribute__((visibility("default"))) const char* __asan_default_options() {
    return "verify_asan_link_order=0:detect_leaks=0";
}

// The exported entry point of a built kernel file, over its table of instantiations.
#define MINIDL_EMULATOR_EXPORT(table)                                                                          \
    extern "C" __attribute__((visibility("default"))) int minidl_emu_launch(int index, const unsigned* grid, const unsigned* block, size_t shared,  \
                                     int nargs, void** args, const int* kinds, const size_t* sizes,          \
                                     char* error, size_t error_size) {                                       \
        return emu::launch(table, (int)(sizeof(table) / sizeof(table[0])), index, grid, block, shared, nargs, \
                           args, kinds, sizes, error, error_size);                                           \
    }
