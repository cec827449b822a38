// kiln info: what a GGUF file holds, for a person (aligned text) or a program (--json).
// Reads only the header and metadata through the mapping; tensor data is never touched.
#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "cli/commands.h"
#include "cli/info_devices.h"
#include "cli/options.h"
#include "formats/gguf.h"
#include "formats/gguf_keys.h"
#include "formats/quant_traits.h"

namespace kiln::cli {

namespace {

namespace keys = gguf_keys;
using json = nlohmann::ordered_json;  // keys in the order a reader expects them

// "15.2M": parameter counts as model cards write them.
std::string human_count(uint64_t n) {
    static const char* const kUnits[] = {"", "K", "M", "B", "T"};
    double v = double(n);
    size_t u = 0;
    while (v >= 1000.0 && u + 1 < std::size(kUnits)) {
        v /= 1000.0;
        ++u;
    }
    char buf[32];
    if (u == 0) std::snprintf(buf, sizeof buf, "%" PRIu64, n);
    else std::snprintf(buf, sizeof buf, "%.1f%s", v, kUnits[u]);
    return buf;
}

std::string human_bytes(uint64_t n) {
    static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = double(n);
    size_t u = 0;
    while (v >= 1024.0 && u + 1 < std::size(kUnits)) {
        v /= 1024.0;
        ++u;
    }
    char buf[32];
    if (u == 0) std::snprintf(buf, sizeof buf, "%" PRIu64 " B", n);
    else std::snprintf(buf, sizeof buf, "%.1f %s", v, kUnits[u]);
    return buf;
}

std::string hex(uint64_t v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%" PRIx64, v);
    return buf;
}

std::string shape_of(const GgufTensorInfo& t) {
    std::string s = "[";
    for (uint32_t d = 0; d < t.n_dims; ++d) {
        if (d) s += ", ";
        s += std::to_string(t.ne[d]);
    }
    return s + "]";
}

const char* type_name(GgmlType t) {
    const QuantTraits* q = find_quant_traits(uint32_t(t));
    return q ? q->name : "?";
}

// A metadata value as JSON: numbers stay numbers; a value of an unexpected kind
// (e.g. per-layer head counts stored as an array) keeps its summary text.
json value_json(const GgufValue* v) {
    if (!v) return nullptr;
    if (const auto* u = std::get_if<uint64_t>(&v->data)) return *u;
    if (const auto* i = std::get_if<int64_t>(&v->data)) return *i;
    if (const auto* d = std::get_if<double>(&v->data)) return *d;
    if (const auto* b = std::get_if<bool>(&v->data)) return *b;
    if (const auto* s = std::get_if<std::string>(&v->data)) return *s;
    return v->summary();
}

std::string value_text(const GgufValue* v) {
    if (!v) return "-";
    if (const auto* s = std::get_if<std::string>(&v->data)) {
        // Short plain strings print bare; anything else quoted and escaped, on one line.
        const bool plain = s->size() <= 80 && std::none_of(s->begin(), s->end(), [](char c) {
            return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
        });
        if (plain) return *s;
    }
    return v->summary();
}

struct TypeUse {
    uint64_t tensors = 0;
    uint64_t bytes = 0;
};

struct Facts {
    std::string arch;  // "" when general.architecture is missing or not a string
    uint64_t n_params = 0;
    uint64_t tensor_bytes = 0;
    std::map<std::string, TypeUse> mix;
    std::optional<uint64_t> vocab_size;
};

Facts gather(const GgufFile& f) {
    Facts facts;
    if (const GgufValue* a = f.find(keys::kArchitecture); a && a->type == GgufValueType::STRING)
        facts.arch = std::get<std::string>(a->data);
    for (const auto& t : f.tensors()) {
        // No overflow: every type stores at least 2 bits per element, so the sums stay
        // below 4x the file size.
        facts.n_params += uint64_t(t.n_elements());
        facts.tensor_bytes += t.n_bytes;
        TypeUse& use = facts.mix[type_name(t.type)];
        ++use.tensors;
        use.bytes += t.n_bytes;
    }
    if (const GgufValue* tokens = f.find(keys::kTokTokens); tokens && tokens->type == GgufValueType::ARRAY)
        facts.vocab_size = std::get<GgufArray>(tokens->data).items.size();
    return facts;
}

const GgufValue* arch_value(const GgufFile& f, const Facts& facts, std::string_view suffix) {
    if (facts.arch.empty()) return nullptr;
    return f.find(keys::arch_key(facts.arch, suffix));
}

void print_json(const GgufFile& f, const Facts& facts, bool tensors, bool metadata) {
    json j;
    j["file"] = f.path();
    j["file_size"] = f.file_size();
    j["gguf_version"] = f.version();
    j["alignment"] = f.alignment();
    j["data_offset"] = f.data_offset();
    j["architecture"] = facts.arch.empty() ? json(nullptr) : json(facts.arch);
    j["name"] = value_json(f.find(keys::kName));
    j["parameters"] = facts.n_params;
    j["parameters_human"] = human_count(facts.n_params);
    j["context_length"] = value_json(arch_value(f, facts, keys::kContextLength));
    j["embedding_length"] = value_json(arch_value(f, facts, keys::kEmbeddingLength));
    j["block_count"] = value_json(arch_value(f, facts, keys::kBlockCount));
    j["head_count"] = value_json(arch_value(f, facts, keys::kHeadCount));
    j["head_count_kv"] = value_json(arch_value(f, facts, keys::kHeadCountKv));
    j["feed_forward_length"] = value_json(arch_value(f, facts, keys::kFeedForwardLength));
    j["tokenizer"] = {
        {"model", value_json(f.find(keys::kTokModel))},
        {"pre", value_json(f.find(keys::kTokPre))},
        {"vocab_size", facts.vocab_size ? json(*facts.vocab_size) : json(nullptr)},
    };
    j["chat_template"] = f.find(keys::kTokChatTemplate) != nullptr;
    j["n_tensors"] = f.tensors().size();
    j["tensor_bytes"] = facts.tensor_bytes;
    json mix = json::array();
    for (const auto& [type, use] : facts.mix) mix.push_back({{"type", type}, {"tensors", use.tensors}, {"bytes", use.bytes}});
    j["quant_mix"] = mix;
    if (tensors) {
        json list = json::array();
        for (const auto& t : f.tensors()) {
            json shape = json::array();
            for (uint32_t d = 0; d < t.n_dims; ++d) shape.push_back(t.ne[d]);
            list.push_back({{"name", t.name}, {"type", type_name(t.type)}, {"shape", shape},
                            {"offset", t.offset}, {"bytes", t.n_bytes}});
        }
        j["tensors"] = list;
    }
    if (metadata) {
        json m = json::object();
        for (const auto& kv : f.metadata())
            m[kv.key] = {{"type", gguf_value_type_name(kv.value.type)}, {"value", value_json(&kv.value)}};
        j["metadata"] = m;
    }
    // Replace, not throw, on invalid UTF-8 in names and strings read from the file.
    std::puts(j.dump(2, ' ', false, json::error_handler_t::replace).c_str());
}

void row(const char* label, const std::string& value) { std::printf("%-16s %s\n", label, value.c_str()); }

void print_text(const GgufFile& f, const Facts& facts, bool tensors, bool metadata) {
    row("file", f.path());
    row("size", human_bytes(f.file_size()) + " (" + std::to_string(f.file_size()) + " bytes), GGUF v" +
                    std::to_string(f.version()) + ", alignment " + std::to_string(f.alignment()));
    row("architecture", facts.arch.empty() ? "- (no general.architecture)" : facts.arch);
    row("name", value_text(f.find(keys::kName)));
    row("parameters", human_count(facts.n_params) + " (" + std::to_string(facts.n_params) + ")");
    const auto arch_row = [&](const char* label, std::string_view suffix) {
        if (const GgufValue* v = arch_value(f, facts, suffix)) row(label, value_text(v));
    };
    arch_row("context length", keys::kContextLength);
    arch_row("embedding", keys::kEmbeddingLength);
    arch_row("layers", keys::kBlockCount);
    arch_row("heads", keys::kHeadCount);
    arch_row("kv heads", keys::kHeadCountKv);
    arch_row("feed forward", keys::kFeedForwardLength);
    std::string tok = value_text(f.find(keys::kTokModel));
    if (const GgufValue* pre = f.find(keys::kTokPre)) tok += " (pre: " + value_text(pre) + ")";
    if (facts.vocab_size) tok += ", " + std::to_string(*facts.vocab_size) + " tokens";
    row("tokenizer", tok);
    row("chat template", f.find(keys::kTokChatTemplate) ? "yes" : "no");
    row("tensors", std::to_string(f.tensors().size()) + ", " + human_bytes(facts.tensor_bytes));

    if (!facts.mix.empty()) {
        std::printf("\nquant mix\n  %-6s %8s %12s %7s\n", "type", "tensors", "bytes", "share");
        for (const auto& [type, use] : facts.mix) {
            const double share = facts.tensor_bytes ? 100.0 * double(use.bytes) / double(facts.tensor_bytes) : 0.0;
            std::printf("  %-6s %8" PRIu64 " %12s %6.1f%%\n", type.c_str(), use.tensors, human_bytes(use.bytes).c_str(), share);
        }
    }
    if (metadata) {
        size_t width = 3;
        for (const auto& kv : f.metadata()) width = std::max(width, kv.key.size());
        width = std::min<size_t>(width, 48);
        std::printf("\nmetadata (%zu keys)\n", f.metadata().size());
        for (const auto& kv : f.metadata())
            std::printf("  %-*s %-8s %s\n", int(width), kv.key.c_str(), gguf_value_type_name(kv.value.type),
                        kv.value.summary().c_str());
    }
    if (tensors) {
        size_t width = 4;
        for (const auto& t : f.tensors()) width = std::max(width, t.name.size());
        width = std::min<size_t>(width, 64);
        std::printf("\n  %-*s %-6s %-22s %12s %12s\n", int(width), "name", "type", "shape", "offset", "bytes");
        for (const auto& t : f.tensors())
            std::printf("  %-*s %-6s %-22s %12s %12" PRIu64 "\n", int(width), t.name.c_str(),
                        type_name(t.type), shape_of(t).c_str(), hex(t.offset).c_str(), t.n_bytes);
    }
}

}  // namespace

int cmd_info(const Args& args) {
    bool tensors = false, as_json = false, metadata = false, devices = false;
    OptionParser parser("kiln info FILE.gguf [--tensors] [--metadata] [--json]  |  kiln info --devices [--json]");
    parser.flag({"--devices"}, "list the GPUs kiln can run on (the numbers --device takes)", [&] { devices = true; });
    parser.flag({"--tensors"}, "list every tensor (name, type, shape, offset, bytes)", [&] { tensors = true; });
    parser.flag({"--metadata"}, "list every metadata key with its type and value", [&] { metadata = true; });
    parser.flag({"--json"}, "print one JSON object instead of text", [&] { as_json = true; });
    std::vector<std::string> files;
    if (!parser.parse(args, &files)) return 0;
    if (devices && files.empty()) {
        print_devices(as_json);
        return 0;
    }
    if (files.empty()) throw UsageError("no file given (usage: kiln info FILE.gguf [--tensors] [--metadata] [--json])");
    if (files.size() > 1) throw UsageError("one file at a time, got " + std::to_string(files.size()));

    const GgufFile f = GgufFile::open(files[0]);
    const Facts facts = gather(f);
    if (as_json) print_json(f, facts, tensors, metadata);
    else print_text(f, facts, tensors, metadata);
    return 0;
}

}  // namespace kiln::cli
