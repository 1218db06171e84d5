#include "thread_pool.h"

#include <chrono>

namespace pk {

namespace {

inline void relax() {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
}

// How long an idle worker keeps spinning for the next loop before it sleeps. A decode step runs
// dozens of loops a few microseconds apart; between generate calls the workers go to sleep.
constexpr auto kSpinBeforeSleep = std::chrono::microseconds(200);

int default_threads() {
    const unsigned n = std::thread::hardware_concurrency();
    return n == 0 ? 1 : static_cast<int>(std::min<unsigned>(n, ThreadPool::kMaxThreads));
}

}  // namespace

ThreadPool& ThreadPool::shared() {
    static ThreadPool* pool = new ThreadPool();  // never destroyed: workers are detached-forever threads
    return *pool;
}

ThreadPool::ThreadPool() : threads_(default_threads()) {}

void ThreadPool::set_threads(int threads) {
    threads_.store(std::max(1, std::min(threads, kMaxThreads)), std::memory_order_relaxed);
}

void ThreadPool::run(const Job& job) {
    ensure_workers(job.threads - 1);
    uint32_t generation;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        job_ = job;
        generation = generation_.load(std::memory_order_relaxed) + 1;
        done_.store(0, std::memory_order_relaxed);
        for (int t = 0; t < job.threads; ++t) {
            const int64_t begin = job.parts * t / job.threads;
            runs_[t].end = job.parts * (t + 1) / job.threads;
            runs_[t].next.store(uint64_t{generation} << 32 | static_cast<uint64_t>(begin), std::memory_order_relaxed);
        }
        generation_.store(generation, std::memory_order_release);
        if (sleepers_ > 0) wake_.notify_all();
    }
    work(job, generation, 0);
    // The barrier: wait for the parts other threads claimed (unclaimed ones were taken by work()).
    for (int spins = 0; done_.load(std::memory_order_acquire) < job.parts; ++spins) {
        if (spins < 4096) relax();
        else std::this_thread::yield();  // a descheduled worker holds a part: let it run
    }
}

bool ThreadPool::claim(int owner, uint32_t generation, int64_t& part) {
    Run& run = runs_[owner];
    uint64_t v = run.next.load(std::memory_order_acquire);
    for (;;) {
        part = static_cast<int64_t>(v & 0xffffffffu);
        if (static_cast<uint32_t>(v >> 32) != generation || part >= run.end) return false;
        if (run.next.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel)) return true;
    }
}

void ThreadPool::work(const Job& job, uint32_t generation, int slot) {
    // Own parts first, then whatever the others have left, nearest neighbour first.
    for (int i = 0; i < job.threads; ++i) {
        const int owner = (slot + i) % job.threads;
        int64_t part;
        while (claim(owner, generation, part)) {
            job.call(job.context, part, slot);
            done_.fetch_add(1, std::memory_order_acq_rel);
        }
    }
}

void ThreadPool::ensure_workers(int count) {
    if (static_cast<int>(workers_.size()) >= count) return;  // only the caller that holds run_mutex_ gets here
    while (static_cast<int>(workers_.size()) < count) {
        const int slot = static_cast<int>(workers_.size()) + 1;
        workers_.emplace_back([this, slot] { worker(slot); });
        workers_.back().detach();
    }
}

void ThreadPool::worker(int slot) {
    uint32_t seen = generation_.load(std::memory_order_acquire);
    for (;;) {
        auto idle_since = std::chrono::steady_clock::now();
        for (int spins = 1; generation_.load(std::memory_order_acquire) == seen; ++spins) {
            relax();
            if (spins % 64 == 0 && std::chrono::steady_clock::now() - idle_since > kSpinBeforeSleep) break;
        }
        Job job;
        uint32_t generation;
        {
            std::unique_lock<std::mutex> lock(mutex_);
            ++sleepers_;
            wake_.wait(lock, [&] { return generation_.load(std::memory_order_relaxed) != seen; });
            --sleepers_;
            generation = generation_.load(std::memory_order_relaxed);
            job = job_;
        }
        seen = generation;
        if (slot < job.threads) work(job, generation, slot);
    }
}

}  // namespace pk
