#pragma once
// Host memory for the K or V rows of a KV cache: zeroed, and committed by the
// OS only where it is written (calloc of a large block maps fresh zero pages
// rather than clearing them). Layers that run on a GPU keep their K and V in
// device memory and never write these rows, so a fully offloaded 7B with 4096
// cells costs no host RAM for the 2 GB of K and V it would otherwise hold.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "engine/kv_cache_error.h"

namespace kiln {

class KvStorage {
public:
    KvStorage() = default;
    explicit KvStorage(size_t bytes) : p_(static_cast<uint8_t*>(std::calloc(bytes ? bytes : 1, 1))), bytes_(bytes) {
        if (!p_)
            throw ContextOverflowError("cannot allocate " + std::to_string(bytes >> 20) +
                                       " MiB of host memory for the KV cache; lower -c");
    }
    uint8_t* data() const { return p_.get(); }
    size_t size() const { return bytes_; }

private:
    struct Free {
        void operator()(uint8_t* p) const { std::free(p); }
    };
    std::unique_ptr<uint8_t, Free> p_;
    size_t bytes_ = 0;
};

}  // namespace kiln
