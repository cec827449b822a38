// Choosing where a model runs: `kiln info --devices`, --backend auto (the
// default), and clear one-line errors for backends or devices that are not there.
#include <doctest/doctest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "run_process.h"

using kiln::test::run_kiln_process;
using kiln::test::shell_quote;

namespace {

std::string model(const std::string& f) { return shell_quote(kiln::test::model_path(f)); }
int count_lines(const std::string& s) { return int(std::count(s.begin(), s.end(), '\n')); }

nlohmann::json devices() {
    const auto r = run_kiln_process("info --devices --json");
    REQUIRE(r.exit_code == 0);
    return nlohmann::json::parse(r.out);
}

}  // namespace

TEST_CASE("e2e backend: info --devices lists GPUs and never offers a software rasteriser to auto") {
    const auto d = devices();
    REQUIRE(d["devices"].is_array());
    const std::string chosen = d["auto"]["backend"].get<std::string>();
    CHECK((chosen == "cpu" || chosen == "cuda" || chosen == "vulkan"));
    for (const auto& dev : d["devices"]) {
        CHECK(dev["name"].is_string());
        CHECK(dev["memory_bytes"].is_number_unsigned());
        // lavapipe (kind "cpu") is slower than the CPU backend: auto must not pick it.
        if (dev["kind"] == "cpu" && dev["backend"] == chosen) CHECK(dev["device"] != d["auto"]["device"]);
    }
    const auto text = run_kiln_process("info --devices");
    REQUIRE(text.exit_code == 0);
    if (d["devices"].empty()) CHECK(text.out.find("models run on the CPU") != std::string::npos);
    else CHECK(text.out.find("--backend auto uses: " + chosen) != std::string::npos);
}

TEST_CASE("e2e backend: run without --backend uses what info --devices says auto picks, and says so") {
    const std::string chosen = devices()["auto"]["backend"].get<std::string>();
    const auto r = run_kiln_process("run -m " + model("stories260K.gguf") + " -p 'Once upon a time' -n 8 --temp 0 -t 2");
    REQUIRE(r.exit_code == 0);
    CHECK(r.err.find("backend: " + chosen) != std::string::npos);
    const auto cpu = run_kiln_process("run -m " + model("stories260K.gguf") + " -p 'Once upon a time' -n 8 --temp 0 -t 2 --backend cpu");
    REQUIRE(cpu.exit_code == 0);
    CHECK(cpu.err.find("backend: cpu (") != std::string::npos);
    CHECK(cpu.out == r.out);  // F32 weights: every backend gives these 8 greedy tokens
}

TEST_CASE("e2e backend: unknown backends and missing devices are one clear line") {
    SUBCASE("unknown backend") {
        const auto r = run_kiln_process("run -m " + model("stories260K.gguf") + " -p hi --backend tpu");
        CHECK(r.exit_code != 0);
        CHECK(r.err.find("expected auto, cpu, cuda or vulkan") != std::string::npos);
    }
    SUBCASE("a device index past the last") {
        const auto r = run_kiln_process("run -m " + model("stories260K.gguf") + " -p hi --backend vulkan --device 99");
        CHECK(r.exit_code == 1);
        CHECK(count_lines(r.err) == 1);
        CHECK(r.err.find("vulkan") != std::string::npos);
    }
    SUBCASE("-ngl is a count") {
        const auto r = run_kiln_process("run -m " + model("stories260K.gguf") + " -p hi -ngl -3");
        CHECK(r.exit_code != 0);
        CHECK(r.err.find("--n-gpu-layers") != std::string::npos);
    }
}
