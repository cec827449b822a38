#include <doctest/doctest.h>

#include <atomic>
#include <vector>

#include "kernels/cpu/thread_pool.h"

TEST_CASE("thread pool runs every task exactly once, op after op") {
    for (int n_threads : {1, 2, 3}) {
        kiln::cpu::ThreadPool pool(n_threads);
        for (int round = 0; round < 200; ++round) {
            const int n = round % 37 + 1;
            std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
            std::atomic<int> bad_thread{0};
            pool.run(n, [&](int64_t task, int thread) {
                hits[size_t(task)].fetch_add(1);
                if (thread < 0 || thread >= n_threads) bad_thread.fetch_add(1);
            });
            int ok = 0;
            for (auto& h : hits) ok += h.load() == 1;
            REQUIRE(ok == n);
            REQUIRE(bad_thread.load() == 0);
        }
    }
}
