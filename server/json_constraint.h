#pragma once
// response_format: output constrained to JSON. A pushdown automaton over
// bytes follows the JSON being written (compact: no whitespace between
// tokens); at each step every vocabulary token whose bytes the automaton
// would reject is masked. With a schema, objects are written with exactly
// the schema's properties in the schema's order (which satisfies
// "required"), values with the declared types, enums and consts.
#include <memory>

#include <nlohmann/json.hpp>

#include "engine/scheduler.h"
#include "engine/tokenizer.h"
#include "server/openai_request.h"

namespace kiln::server {

// nullptr for ResponseFormat::Kind::Text. Throws ApiError 400 for a schema
// using keywords it cannot enforce (the message names the keyword).
std::shared_ptr<TokenConstraint> make_json_constraint(const ResponseFormat& format, const Tokenizer& tokenizer);

// Checks a schema without building a constraint (for validating a request early).
void check_json_schema(const nlohmann::json& schema);

}  // namespace kiln::server
