#include "kernels/vulkan/spirv_bindings.h"

#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace kiln::vk {

namespace {
// SPIR-V 1.x opcodes, decorations and storage classes (the unified spec, section 3).
constexpr uint32_t kOpTypePointer = 32, kOpVariable = 59, kOpDecorate = 71, kOpMemberDecorate = 72;
constexpr uint32_t kDecorationBinding = 33, kDecorationNonWritable = 24;
constexpr uint32_t kStorageUniform = 2, kStorageBuffer = 12;
constexpr uint32_t kHeaderWords = 5;
}  // namespace

uint32_t spirv_written_bindings(const uint32_t* w, size_t n) {
    std::unordered_map<uint32_t, uint32_t> binding_of;   // variable id -> binding
    std::unordered_set<uint32_t> readonly_ids;           // variables or struct types marked NonWritable
    std::unordered_map<uint32_t, uint32_t> pointee_of;   // pointer type id -> pointee type id
    struct Var {
        uint32_t id, type;
    };
    std::vector<Var> buffers;
    for (size_t i = kHeaderWords; i < n;) {
        const uint32_t op = w[i] & 0xFFFFu, len = w[i] >> 16;
        if (len == 0 || i + len > n) return ~0u;
        const uint32_t* a = w + i + 1;
        if (op == kOpDecorate && len >= 3) {
            if (a[1] == kDecorationBinding && len >= 4) binding_of[a[0]] = a[2];
            if (a[1] == kDecorationNonWritable) readonly_ids.insert(a[0]);
        } else if (op == kOpMemberDecorate && len >= 4 && a[2] == kDecorationNonWritable) {
            readonly_ids.insert(a[0]);  // glslang marks every member of a readonly block
        } else if (op == kOpTypePointer && len >= 4) {
            pointee_of[a[0]] = a[2];
        } else if (op == kOpVariable && len >= 4 && (a[2] == kStorageBuffer || a[2] == kStorageUniform)) {
            buffers.push_back({a[1], a[0]});
        }
        i += len;
    }
    uint32_t written = 0;
    for (const Var& v : buffers) {
        const auto b = binding_of.find(v.id);
        if (b == binding_of.end() || b->second >= 32) continue;
        const auto t = pointee_of.find(v.type);
        const bool readonly = readonly_ids.count(v.id) || (t != pointee_of.end() && readonly_ids.count(t->second));
        if (!readonly) written |= 1u << b->second;
    }
    return written;
}

}  // namespace kiln::vk
