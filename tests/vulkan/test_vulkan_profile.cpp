// KILN_VK_PROFILE=1: GPU time per shader from timestamp queries around each
// dispatch (kernels/vulkan/vulkan_profile.h). Lavapipe times its queue, as do
// the GPUs kiln targets, so the profile must exist wherever these run.
#include <map>
#include <string>

#include "kernels/vulkan/vulkan_check.h"
#include "vulkan_test_util.h"

using namespace kiln;
using namespace kiln::test;

namespace {

// Float tiles (no cooperative matrices) and float activations (no q8 copies),
// so that each op below is exactly one dispatch of a known shader on any device.
std::unique_ptr<vk::VulkanBackend> backend_with_profile(const char* value) {
    ProfileVariable v(value);
    return vulkan_backend(true, false, false);
}

// rms_norm's pipeline: its subgroup build where the device has subgroup arithmetic.
std::string norm_shader(const vk::VulkanBackend& vb) { return vb.device().subgroups() ? "rms_norm_sg" : "rms_norm"; }

std::map<std::string, vk::ShaderProfile::Entry> by_shader(const vk::ShaderProfile& p) {
    std::map<std::string, vk::ShaderProfile::Entry> m;
    for (const auto& e : p.entries()) m[e.shader] = e;
    return m;
}

}  // namespace

TEST_CASE("vulkan: KILN_VK_PROFILE=1 counts and times each dispatch under its shader's name") {
    auto vb = backend_with_profile("1");
    if (!vb) return;
    const vk::ShaderProfile* prof = vb->device().profile();
    REQUIRE(prof != nullptr);
    CHECK(prof->entries().empty());
    CHECK(prof->table("x").empty());

    const int64_t n_in = 256, n_out = 96, n_tok = 8;  // more than 4 tokens: the tiled matmul, not matvec
    const HostWeight hw = make_weight(GgmlType::Q8_0, n_in, n_out, 3);
    const Weight w = vb->upload_weight(hw.view);
    const auto gains = random_floats(size_t(n_out), 4);
    const Weight g = upload_vector(*vb, gains);
    const auto x = random_floats(size_t(n_tok * n_in), 5);
    auto dx = device_act(*vb, n_tok, n_in, &x);
    auto dy = device_act(*vb, n_tok, n_out);
    auto dz = device_act(*vb, n_tok, n_out);
    for (int i = 0; i < 2; ++i) vb->matmul(w, dx.act(), dy.act());
    for (int i = 0; i < 3; ++i) vb->rms_norm(dy.act(), g, 1e-5f, dz.act());
    read(*vb, dz.act());  // waits: results are read after the fence

    const std::string norm = norm_shader(*vb);
    auto m = by_shader(*prof);
    CHECK(m.size() == 2);
    REQUIRE(m.count("matmul_q8_0"));
    REQUIRE(m.count(norm));
    CHECK(m["matmul_q8_0"].count == 2);
    CHECK(m[norm].count == 3);
    for (const auto& [name, e] : m) {
        INFO(name);
        CHECK(e.total_us >= 0.0);
        CHECK(e.mean_us() == doctest::Approx(e.total_us / double(e.count)));
    }
    // A matmul of 8 x 256 x 96 takes some time on any device.
    CHECK(m["matmul_q8_0"].total_us > 0.0);
    const auto sorted = prof->entries();
    CHECK(sorted.front().total_us >= sorted.back().total_us);

    const std::string table = prof->table(vb->device().name());
    CHECK(table.find("5 dispatches") != std::string::npos);
    CHECK(table.find("matmul_q8_0") != std::string::npos);
    CHECK(table.find(norm) != std::string::npos);
    CHECK(table.find('%') != std::string::npos);

    // Reading again runs nothing new and counts nothing twice.
    read(*vb, dz.act());
    CHECK(by_shader(*prof)[norm].count == 3);
}

TEST_CASE("vulkan: the profile counts dispatches over several command buffers and flushes") {
    auto vb = backend_with_profile("1");
    if (!vb) return;
    const vk::ShaderProfile* prof = vb->device().profile();
    REQUIRE(prof != nullptr);
    const int64_t rows = 3, cols = 64;
    const auto gains = random_floats(size_t(cols), 1);
    const Weight g = upload_vector(*vb, gains);
    const auto x = random_floats(size_t(rows * cols), 2);
    auto dx = device_act(*vb, rows, cols, &x);
    // 150: more than the 64 dispatches the stream puts in one command buffer,
    // so several are submitted before the one wait; then 20 more after it.
    for (int i = 0; i < 150; ++i) vb->rms_norm(dx.act(), g, 1e-5f, dx.act());
    vb->synchronize();
    CHECK(by_shader(*prof)[norm_shader(*vb)].count == 150);
    for (int i = 0; i < 20; ++i) vb->rms_norm(dx.act(), g, 1e-5f, dx.act());
    vb->synchronize();
    const auto m = by_shader(*prof);
    CHECK(m.size() == 1);
    CHECK(m.at(norm_shader(*vb)).count == 170);
    CHECK(m.at(norm_shader(*vb)).total_us >= 0.0);
}

TEST_CASE("vulkan: without KILN_VK_PROFILE=1 nothing is profiled, and another value is an error naming it") {
    for (const char* off : {static_cast<const char*>(nullptr), "0", ""}) {
        INFO("KILN_VK_PROFILE " << (off ? off : "unset"));
        auto vb = backend_with_profile(off);
        if (!vb) return;
        const auto g = random_floats(16, 1);
        const Weight w = upload_vector(*vb, g);
        auto dx = device_act(*vb, 2, 16, &g);
        vb->rms_norm(dx.act(), w, 1e-5f, dx.act());
        vb->synchronize();
        CHECK(vb->device().profile() == nullptr);
    }
    ProfileVariable v("yes");
    try {
        vk::VulkanBackend vb(vk::VulkanOptions{0, true, false, vk::IntDot::Off});
        FAIL("KILN_VK_PROFILE=yes was accepted");
    } catch (const VulkanError& e) {
        CHECK(std::string(e.what()).find("KILN_VK_PROFILE is 'yes'") != std::string::npos);
    }
}
