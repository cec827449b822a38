// Loading llama files: hyper-parameters and weight binding, with the errors a
// user sees for broken files. Uses tiny files written with GgufWriter.
#include <doctest/doctest.h>

#include <functional>
#include <string>
#include <vector>

#include "formats/gguf.h"
#include "kernels/cpu/cpu_backend.h"
#include "models/model_registry.h"

using namespace kiln;

namespace {

struct TinyLlama {
    int64_t n_embd = 8, n_head = 2, n_head_kv = 1, n_ff = 12, n_vocab = 10, n_layer = 2;
    bool tied = true;
    // Lets a test break one thing: rename or reshape a tensor, change a key.
    std::function<void(std::string&, std::vector<int64_t>&)> edit_tensor;
    std::function<void(GgufWriter&)> edit_meta;

    std::vector<uint8_t> bytes() const {
        GgufWriter w;
        w.set("general.architecture", GgufValue::str("llama"));
        w.set("llama.context_length", GgufValue::u32(64));
        w.set("llama.embedding_length", GgufValue::u32(uint32_t(n_embd)));
        w.set("llama.block_count", GgufValue::u32(uint32_t(n_layer)));
        w.set("llama.feed_forward_length", GgufValue::u32(uint32_t(n_ff)));
        w.set("llama.attention.head_count", GgufValue::u32(uint32_t(n_head)));
        w.set("llama.attention.head_count_kv", GgufValue::u32(uint32_t(n_head_kv)));
        w.set("llama.attention.layer_norm_rms_epsilon", GgufValue::f32(1e-5f));
        if (edit_meta) edit_meta(w);
        const int64_t hd = n_embd / n_head;
        auto add = [&](std::string name, std::vector<int64_t> ne) {
            if (edit_tensor) edit_tensor(name, ne);
            if (name.empty()) return;
            int64_t n = 1;
            for (auto d : ne) n *= d;
            std::vector<float> data(size_t(n), 0.01f);
            w.add_tensor(name, GgmlType::F32, ne, data.data(), data.size() * 4);
        };
        add("token_embd.weight", {n_embd, n_vocab});
        for (int il = 0; il < n_layer; ++il) {
            const std::string p = "blk." + std::to_string(il) + ".";
            add(p + "attn_norm.weight", {n_embd});
            add(p + "attn_q.weight", {n_embd, n_head * hd});
            add(p + "attn_k.weight", {n_embd, n_head_kv * hd});
            add(p + "attn_v.weight", {n_embd, n_head_kv * hd});
            add(p + "attn_output.weight", {n_head * hd, n_embd});
            add(p + "ffn_norm.weight", {n_embd});
            add(p + "ffn_gate.weight", {n_embd, n_ff});
            add(p + "ffn_up.weight", {n_embd, n_ff});
            add(p + "ffn_down.weight", {n_ff, n_embd});
        }
        add("output_norm.weight", {n_embd});
        if (!tied) add("output.weight", {n_embd, n_vocab});
        return w.to_bytes();
    }
};

std::string load_error(const TinyLlama& t) {
    GgufFile f = GgufFile::from_bytes(t.bytes(), "tiny.gguf");
    cpu::CpuBackend be(1);
    Placement pl;
    pl.input = &be;
    try {
        create_model(f, pl);
    } catch (const ModelError& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("a well-formed tiny llama loads, tied or not") {
    for (bool tied : {true, false}) {
        TinyLlama t;
        t.tied = tied;
        GgufFile f = GgufFile::from_bytes(t.bytes(), "tiny.gguf");
        cpu::CpuBackend be(1);
        Placement pl;
        pl.input = &be;
        auto m = create_model(f, pl);
        CHECK(m->n_vocab() == 10);
        CHECK(m->hparams().head_dim == 4);
        CHECK(m->hparams().n_kv_dim() == 4);
        CHECK(m->hparams().rope.n_rot == 4);           // default: head_dim
        CHECK(m->hparams().rope.freq_base == 10000.0f); // default when the key is absent
    }
}

TEST_CASE("a mis-shaped tensor names the tensor, its shape and the expected one") {
    TinyLlama t;
    t.edit_tensor = [](std::string& name, std::vector<int64_t>& ne) {
        if (name == "blk.1.attn_q.weight") ne = {8, 6};
    };
    CHECK(load_error(t) == "tiny.gguf: tensor blk.1.attn_q.weight has shape [8, 6], expected [8, 8]");
}

TEST_CASE("a missing tensor is named") {
    TinyLlama t;
    t.edit_tensor = [](std::string& name, std::vector<int64_t>&) {
        if (name == "blk.0.ffn_up.weight") name.clear();
    };
    CHECK(load_error(t).find("tiny.gguf: tensor blk.0.ffn_up.weight is missing") == 0);
}

TEST_CASE("bad hyper-parameters are refused with the key's name") {
    TinyLlama t;
    t.edit_meta = [](GgufWriter& w) { w.set("llama.attention.head_count_kv", GgufValue::u32(3)); };
    CHECK(load_error(t).find("llama.attention.head_count_kv = 3 is invalid") != std::string::npos);

    TinyLlama u;
    u.edit_meta = [](GgufWriter& w) { w.set("llama.rope.dimension_count", GgufValue::u32(5)); };
    CHECK(load_error(u).find("llama.rope.dimension_count = 5 is invalid") != std::string::npos);

    TinyLlama v;
    v.edit_meta = [](GgufWriter& w) { w.set("llama.rope.scaling.type", GgufValue::str("su")); };
    CHECK(load_error(v).find("rope scaling type \"su\"") != std::string::npos);

    TinyLlama x;
    x.edit_meta = [](GgufWriter& w) { w.set("llama.block_count", GgufValue::str("two")); };
    CHECK(!load_error(x).empty());
}

TEST_CASE("yarn and linear rope scaling are read into the rope parameters") {
    TinyLlama t;
    t.edit_meta = [](GgufWriter& w) {
        w.set("llama.rope.scaling.type", GgufValue::str("yarn"));
        w.set("llama.rope.scaling.factor", GgufValue::f32(4.0f));
        w.set("llama.rope.scaling.original_context_length", GgufValue::u32(16));
    };
    GgufFile f = GgufFile::from_bytes(t.bytes(), "tiny.gguf");
    cpu::CpuBackend be(1);
    Placement pl;
    pl.input = &be;
    auto m = create_model(f, pl);
    CHECK(m->hparams().rope.freq_scale == 0.25f);
    CHECK(m->hparams().rope.ext_factor == 1.0f);
    CHECK(m->hparams().rope.n_ctx_orig == 16);
}

TEST_CASE("an unknown architecture lists the supported ones") {
    TinyLlama t;
    t.edit_meta = [](GgufWriter& w) { w.set("general.architecture", GgufValue::str("mamba")); };
    CHECK(load_error(t) == "tiny.gguf: architecture \"mamba\" is not supported (supported: llama)");
}
