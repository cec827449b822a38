#include "engine/jinja.h"

#include "engine/jinja_parser.h"

namespace kiln::jinja {

Template Template::parse(std::string_view source) {
    Template t;
    t.body_ = std::make_shared<const Body>(parse_template(source));
    return t;
}

std::string Template::render(const Dict& variables, const Limits& limits) const {
    auto globals = std::make_shared<Scope>();
    add_builtin_globals(globals->vars);
    for (const auto& [name, value] : variables.entries) globals->vars.set(name, value);
    Interpreter interpreter(limits, std::move(globals));
    return interpreter.render(*body_);
}

}  // namespace kiln::jinja
