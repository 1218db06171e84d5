// The kernels' own thread pool: persistent workers and a barrier-ended parallel-for.
//
// A loop over [0, n) is cut into `parts` contiguous parts, and every thread owns a contiguous run of
// them: thread t (t = 0 is the caller) gets parts [parts·t/T, parts·(t+1)/T). So the same thread
// reads the same slice of a weight matrix at every decode step (its cache keeps it, and the hardware
// prefetcher sees one long stream per thread). A thread that finishes its own run takes parts left
// in another's (one part at a time, from the front), so a worker the OS has descheduled on a busy
// machine delays the loop by at most the part it is in, never by its whole share; the loop ends
// when every part is done (the caller spins on a counter: the barrier).
//
// Workers spin for a short while after each loop (decode loops follow each other within
// microseconds), then sleep on a condition variable; waking them costs a system call only then.
// One loop runs at a time: a second caller (another decoder on another thread) runs its loop alone
// on its own thread rather than wait.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace pk {

class ThreadPool {
   public:
    static constexpr int kMaxThreads = 256;

    // Process-wide and never destroyed: workers sleep when idle and end with the process.
    static ThreadPool& shared();

    // Threads a loop may use, the caller included (>= 1). Workers are started on first use.
    void set_threads(int threads);
    int threads() const { return threads_.load(std::memory_order_relaxed); }

    // Runs f(begin, end, slot) over [0, n) split in contiguous parts of at least `grain` items on
    // up to `threads` threads (a count read once per operation with threads(), so per-thread scratch
    // sized by it stays valid), slot < threads being a per-thread index. Returns when all are done.
    template <class F>
    void parallel_for(int64_t n, int64_t grain, int threads, F&& f) {
        if (n <= 0) return;
        const int64_t most = (n + grain - 1) / (grain < 1 ? 1 : grain);
        threads = static_cast<int>(std::min<int64_t>(std::min(threads, kMaxThreads), most));
        std::unique_lock<std::mutex> exclusive(run_mutex_, std::defer_lock);
        if (threads <= 1 || !exclusive.try_lock()) {  // too small, or another loop is running: alone
            f(int64_t{0}, n, 0);
            return;
        }
        // Two parts per thread: enough for one thread to take over half of a late one's share, few
        // enough that every part is a long contiguous stream.
        const int64_t parts = std::min<int64_t>(n, 2 * static_cast<int64_t>(threads));
        auto body = [&](int64_t part, int slot) { f(n * part / parts, n * (part + 1) / parts, slot); };
        run(Job{&invoke<decltype(body)>, &body, parts, threads});
    }

   private:
    using Call = void (*)(void* context, int64_t part, int slot);

    template <class B>
    static void invoke(void* context, int64_t part, int slot) {
        (*static_cast<B*>(context))(part, slot);
    }

    struct Job {
        Call call = nullptr;
        void* context = nullptr;
        int64_t parts = 0;
        int threads = 0;
    };

    // One thread's run of parts: next is generation << 32 | next part, so a worker that wakes late
    // can never claim a part of a newer loop than the one it read.
    struct alignas(64) Run {
        std::atomic<uint64_t> next{0};
        int64_t end = 0;
    };

    ThreadPool();

    void run(const Job& job);
    void work(const Job& job, uint32_t generation, int slot);
    bool claim(int owner, uint32_t generation, int64_t& part);
    void ensure_workers(int count);
    void worker(int slot);

    std::atomic<int> threads_;
    std::mutex run_mutex_;  // one loop at a time
    std::mutex mutex_;      // guards job_ and the sleep / wake hand-off
    std::condition_variable wake_;
    Job job_;
    int sleepers_ = 0;
    std::atomic<uint32_t> generation_{0};
    alignas(64) std::atomic<int64_t> done_{0};
    Run runs_[kMaxThreads];
    std::vector<std::thread> workers_;
};

}  // namespace pk
