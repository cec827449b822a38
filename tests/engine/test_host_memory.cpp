// Host RAM checks before kiln's own allocations: the KV cache of CPU layers
// and the repacked Q4_0 copies. KILN_MAX_HOST_MEMORY (a cap on kiln's resident
// memory) stands in for a small machine.
#include <doctest/doctest.h>

#include <cstdlib>
#include <string>

#include "engine/context.h"
#include "kernels/host_memory.h"
#include "test_paths.h"

using namespace kiln;

namespace {
// KILN_MAX_HOST_MEMORY for one scope.
struct HostMemoryCap {
    explicit HostMemoryCap(const std::string& v) { setenv("KILN_MAX_HOST_MEMORY", v.c_str(), 1); }
    explicit HostMemoryCap(int64_t bytes) : HostMemoryCap(std::to_string(bytes)) {}
    ~HostMemoryCap() { unsetenv("KILN_MAX_HOST_MEMORY"); }
};
}  // namespace

TEST_CASE("host memory: MemAvailable, lowered by KILN_MAX_HOST_MEMORY, and a bad value is an error naming it") {
    const int64_t avail = host_memory_available();
    CHECK(avail > 0);  // Linux: /proc/meminfo has MemAvailable
    {
        HostMemoryCap cap("64G");
        CHECK(host_memory_available() <= avail);
    }
    {
        HostMemoryCap cap(host_memory_resident() + (int64_t(8) << 20));
        const int64_t left = host_memory_available();
        CHECK(left > 0);
        CHECK(left <= (int64_t(8) << 20));
    }
    for (const char* bad : {"lots", "-5", "6T", "0"}) {
        HostMemoryCap cap(bad);
        CHECK_THROWS_WITH_AS(host_memory_available(), doctest::Contains("KILN_MAX_HOST_MEMORY"), std::invalid_argument);
    }
}

TEST_CASE("context: a KV cache larger than the RAM left is an error naming a -c that fits") {
    auto model = load_model(test::model_path("kiln-test-15m-f16.gguf"), LoadOptions{2});
    REQUIRE(model->n_host_layers() == model->hparams().n_layer);
    std::string message;
    {
        // 6 layers x 288 x 2 (K, V) x 2 bytes: 6.75 KiB a token, 27 MiB for 4096.
        HostMemoryCap cap(host_memory_resident() + (int64_t(8) << 20));
        try {
            Context ctx(model, ContextOptions{4096});
            FAIL("a 27 MiB cache fit in 8 MiB");
        } catch (const ContextOverflowError& e) {
            message = e.what();
        }
        INFO(message);
        CHECK(message.find("4096 tokens") != std::string::npos);
        const size_t at = message.find("lower -c to ");
        REQUIRE(at != std::string::npos);
        const int64_t fits = std::stoll(message.substr(at + 12));
        CHECK(fits >= 256);
        CHECK(fits < 4096);
        Context ctx(model, ContextOptions{fits});  // what the message names does fit
        CHECK(ctx.n_ctx() == fits);
    }
    Context ctx(model, ContextOptions{4096});  // without the cap
    CHECK(ctx.n_ctx() == 4096);
}

#if defined(__x86_64__)
TEST_CASE("cpu backend: repacking Q4_0 beyond the RAM left is an error, not an OOM kill") {
    const char* forced = std::getenv("KILN_CPU");
    if (!__builtin_cpu_supports("avx2") || (forced && std::string(forced) == "scalar")) {
        MESSAGE("skipped: this CPU reads Q4_0 in place (no repacked copy to check)");
        return;
    }
    HostMemoryCap cap(host_memory_resident() + (int64_t(64) << 10));
    CHECK_THROWS_WITH(load_model(test::model_path("kiln-test-15m-q4_0.gguf"), LoadOptions{2}),
                      doctest::Contains("not enough RAM"));
}
#endif
