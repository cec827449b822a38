#pragma once
// A fixed set of worker threads created once with the backend. run() hands out
// task indices through an atomic counter; the calling thread works too, so
// n_threads = 1 means no extra threads at all. Workers spin briefly between
// ops (ops come back to back during a forward pass) and then sleep.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace kiln::cpu {

class ThreadPool {
public:
    explicit ThreadPool(int n_threads);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int n_threads() const { return n_threads_; }

    // Calls fn(task, thread) for every task in [0, n_tasks), thread in [0, n_threads).
    // Returns when all are done. fn must not throw.
    template <class F>
    void run(int64_t n_tasks, F&& fn) {
        run_impl(n_tasks, [](void* ctx, int64_t task, int thread) { (*static_cast<F*>(ctx))(task, thread); }, &fn);
    }

private:
    using TaskFn = void (*)(void* ctx, int64_t task, int thread);
    void run_impl(int64_t n_tasks, TaskFn fn, void* ctx);
    void worker(int thread);
    void work(int thread);

    int n_threads_;
    std::vector<std::thread> workers_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::atomic<uint64_t> generation_{0};
    std::atomic<int64_t> next_task_{0};
    std::atomic<int> n_done_{0};
    bool stop_ = false;
    TaskFn fn_ = nullptr;
    void* ctx_ = nullptr;
    int64_t n_tasks_ = 0;
};

}  // namespace kiln::cpu
