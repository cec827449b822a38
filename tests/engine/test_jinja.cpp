// Language features of the Jinja subset, one small template each. Expected
// strings were produced by Python jinja2 3.1 with the environment Hugging Face
// uses (trim_blocks, lstrip_blocks, loopcontrols, transformers' tojson).
#include <doctest/doctest.h>

#include <string>

#include "engine/chat_template.h"

namespace {

struct Case {
    const char* name;
    const char* source;
    const char* expected;
};

const char* kVars = R"({
  "d": {"b": 2, "a": 1}, "xs": [3, 1, 2], "s": "  Hello World  ", "n": 7,
  "users": [{"name": "bob", "age": 3}, {"name": "Al", "age": 5}, {"name": "cy"}]
})";

std::string render(const std::string& source) {
    kiln::ChatTemplateContext ctx;
    ctx.bos_token = "<s>";
    ctx.eos_token = "</s>";
    ctx.extra_vars = nlohmann::ordered_json::parse(kVars);
    auto messages = nlohmann::ordered_json::parse(R"([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}])");
    return kiln::ChatTemplate::parse(source).render(messages, false, ctx);
}

template <size_t N>
void run(const Case (&cases)[N]) {
    for (const auto& c : cases) {
        INFO(c.name << ": " << c.source);
        std::string got;
        CHECK_NOTHROW(got = render(c.source));
        CHECK(got == std::string(c.expected));
    }
}

}  // namespace



TEST_CASE("jinja statements: if, for, loop variables, set, namespace, macro, call, filter, raw") {
    static const Case cases[] = {
    {"if/elif/else", R"({% if n > 10 %}big{% elif n > 5 %}mid{% else %}small{% endif %})", R"(mid)"},
    {"for with loop vars", R"({% for x in xs %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }};{% endfor %})", R"(1032TrueFalse3;2121FalseFalse3;3210FalseTrue3;)"},
    {"for previtem/nextitem", R"({% for x in xs %}{{ loop.previtem }}<{{ x }}>{{ loop.nextitem }}|{% endfor %})", R"(<3>1|3<1>2|1<2>|)"},
    {"for else", R"({% for x in [] %}x{% else %}empty{% endfor %})", R"(empty)"},
    {"for inline filter", R"({% for x in xs if x > 1 %}{{ x }}/{{ loop.length }} {% endfor %})", R"(3/2 2/2 )"},
    {"for tuple unpacking", R"({% for k, v in d.items() %}{{ k }}={{ v }},{% endfor %})", R"(b=2,a=1,)"},
    {"for over dict keys", R"({% for k in d %}{{ k }}{% endfor %})", R"(ba)"},
    {"for over string", R"({% for c in 'héllo' %}[{{ c }}]{% endfor %})", R"([h][é][l][l][o])"},
    {"break and continue", R"({% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 5 %}{% break %}{% endif %}{{ x }}{% endfor %})", R"(0134)"},
    {"loop scope does not leak", R"({% set x = 1 %}{% for i in xs %}{% set x = i %}{% endfor %}{{ x }})", R"(1)"},
    {"namespace", R"({% set ns = namespace(total=0, seen=false) %}{% for x in xs %}{% set ns.total = ns.total + x %}{% endfor %}{{ ns.total }} {{ ns.seen }})", R"(6 False)"},
    {"set block", R"({% set block %}a {{ n }} b{% endset %}[{{ block }}])", R"([a 7 b])"},
    {"set block with filter", R"({% set block | upper %}shout {{ n }}{% endset %}{{ block }})", R"(SHOUT 7)"},
    {"filter block", R"({% filter upper %}hello {{ 'x' }}{% endfilter %})", R"(HELLO X)"},
    {"macro with defaults", R"({% macro greet(name, greeting='Hello') %}{{ greeting }}, {{ name }}!{% endmacro %}{{ greet('Ann') }} {{ greet('Bo', greeting='Hi') }})", R"(Hello, Ann! Hi, Bo!)"},
    {"macro recursion", R"({% macro fact(k) %}{% if k <= 1 %}1{% else %}{{ k * (fact(k - 1)|int) }}{% endif %}{% endmacro %}{{ fact(5) }})", R"(120)"},
    {"call block", R"({% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('b') %}bold {{ n }}{% endcall %})", R"(<b>bold 7</b>)"},
    {"raw", R"({% raw %}{{ not evaluated }}{% endraw %})", R"({{ not evaluated }})"},
    {"comment", R"(a{# comment #}b)", R"(ab)"},
    {"whitespace control", R"(a  {{- ' b ' -}}  c {%- if true %} d{% endif -%}   e)", R"(a b c de)"},
    };
    run(cases);
}

TEST_CASE("jinja whitespace: trim_blocks, lstrip_blocks, -/+ markers, trailing newline") {
    static const Case cases[] = {
    {"trim_blocks and lstrip_blocks", R"(<ul>
  {% for x in xs %}
    <li>{{ x }}</li>
  {% endfor %}
</ul>
)", R"(<ul>
    <li>3</li>
    <li>1</li>
    <li>2</li>
</ul>)"},
    {"lstrip keeps text before tag", R"(x  {% if true %}y{% endif %})", R"(x  y)"},
    {"plus disables lstrip", R"(a
  {%+ if true %}b{% endif %})", R"(a
  b)"},
    {"comment lines are trimmed", R"(a
  {# note #}
b)", R"(a
b)"},
    {"variable tags are not trimmed", R"({{ 'a' }}
{{ 'b' }}
)", R"(a
b)"},
    };
    run(cases);
}

TEST_CASE("jinja expressions: literals, operators, comparisons, tests, attribute access, slicing") {
    static const Case cases[] = {
    {"literals", R"({{ 'it\'s' }} {{ "q\"q" }} {{ 'tab\tnl\n' }} {{ 42 }} {{ 1.5 }} {{ True }} {{ false }} {{ None }} {{ none }})", R"(it's q"q tab	nl
 42 1.5 True False None None)"},
    {"string escapes", R"({{ '\u00e9\x41\\' }})", R"(éA\)"},
    {"list and dict literals", R"({{ [1, 'a', none, true, 2.0] }} {{ {'k': 'v', 'n': [1]} }})", R"([1, 'a', None, True, 2.0] {'k': 'v', 'n': [1]})"},
    {"arithmetic", R"({{ 7 + 2 }} {{ 7 - 2 }} {{ 7 * 2 }} {{ 7 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 1 + 1.5 }} {{ 0.1 + 0.2 }})", R"(9 5 14 3.5 3 -4 1 2 1024 2.5 0.30000000000000004)"},
    {"string concat and repeat", R"({{ 'a' + 'b' }} {{ 'a' ~ 1 ~ none }} {{ 'ab' * 3 }} {{ [1] + [2] }})", R"(ab a1None ababab [1, 2])"},
    {"comparisons", R"({{ 1 < 2 }} {{ 2 <= 1 }} {{ 'a' < 'b' }} {{ 1 == 1.0 }} {{ 1 != 2 }} {{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ [1, 2] == [1, 2] }})", R"(True False True True True True False True)"},
    {"logic returns operands", R"({{ 0 or 'x' }} {{ 'a' and 'b' }} {{ not 0 }} {{ none or [] }} {{ 1 and 0 }})", R"(x b True [] 0)"},
    {"in and not in", R"({{ 'ell' in 'hello' }} {{ 2 in xs }} {{ 'a' in d }} {{ 'z' not in d }} {{ 5 not in xs }})", R"(True True True True True)"},
    {"ternary", R"({{ 'yes' if n > 5 else 'no' }} {{ 'yes' if n > 50 else 'no' }} [{{ 'x' if false }}])", R"(yes no [])"},
    {"attribute and subscript", R"({{ messages[0].role }} {{ messages[-1]['content'] }} {{ d.a }} {{ d['b'] }} {{ users[1].name }})", R"(user yo 1 2 Al)"},
    {"missing attribute is undefined", R"([{{ d.zzz }}] {{ d.zzz is defined }} {{ messages[5] is defined }} {{ users[2].age is undefined }})", R"([] False False True)"},
    {"slicing", R"({{ xs[1:] }} {{ xs[:-1] }} {{ xs[::-1] }} {{ 'hello'[1:3] }} {{ 'héllo'[::-1] }} {{ xs[::2] }})", R"([1, 2] [3, 1] [2, 1, 3] el olléh [3, 2])"},
    {"unary minus and filters bind", R"({{ -3|abs }} {{ -(3) }} {{ (-3)|abs }})", R"(3 -3 3)"},
    {"undefined renders empty", R"([{{ nothing }}] {{ nothing is defined }} {{ nothing|length }} {% for x in nothing %}x{% endfor %})", R"([] False 0 )"},
    {"tests", R"({{ none is none }} {{ 'a' is string }} {{ 1 is number }} {{ 1.0 is integer }} {{ 1 is integer }} {{ d is mapping }} {{ xs is iterable }} {{ 'x' is sequence }} {{ true is boolean }} {{ true is true }} {{ false is false }} {{ 4 is even }} {{ 3 is odd }} {{ 9 is divisibleby 3 }} {{ 9 is divisibleby(4) }} {{ 'a' is equalto 'a' }} {{ 1 is eq 2 }} {{ n is not none }} {{ xs is not mapping }})", R"(True True True False True True True True True True True True True True False True False True True)"},
    };
    run(cases);
}

TEST_CASE("jinja filters") {
    static const Case cases[] = {
    {"trim upper lower title capitalize", R"([{{ s|trim }}] {{ 'abc'|upper }} {{ 'ABC'|lower }} {{ 'hello big-world (x)'|title }} {{ 'hELLO wORLD'|capitalize }} {{ '--a--'|trim('-') }})", R"([Hello World] ABC abc Hello Big-World (X) Hello world a)"},
    {"length count first last", R"({{ xs|length }} {{ 'héllo'|length }} {{ d|count }} {{ xs|first }} {{ xs|last }} {{ 'abc'|first }})", R"(3 5 2 3 2 a)"},
    {"join", R"({{ xs|join(', ') }} {{ users|join('/', attribute='name') }} {{ ['a','b']|join }})", R"(3, 1, 2 bob/Al/cy ab)"},
    {"default", R"({{ nothing|default('dflt') }} {{ ''|default('empty') }} {{ ''|default('empty', true) }} {{ 0|d('zero', boolean=true) }} {{ n|default(1) }})", R"(dflt  empty zero 7)"},
    {"replace", R"({{ 'aaa'|replace('a', 'b') }} {{ 'aaa'|replace('a', 'b', 2) }})", R"(bbb bba)"},
    {"tojson", R"({{ d|tojson }} {{ users[0]|tojson(indent=2) }} {{ 'é"<'|tojson }} {{ [1, 2.5, none, true]|tojson }} {{ {'a': []}|tojson(indent=4) }} {{ d|tojson(separators=(',', ':')) }})", R"({"b": 2, "a": 1} {
  "name": "bob",
  "age": 3
} "é\"<" [1, 2.5, null, true] {
    "a": []
} {"b":2,"a":1})"},
    {"string int float list", R"({{ 12|string ~ 'x' }} {{ '42'|int + 1 }} {{ 'x'|int }} {{ 3.9|int }} {{ '1.5'|float }} {{ 'ab'|list }} {{ d|list }})", R"(12x 43 0 3 1.5 ['a', 'b'] ['b', 'a'])"},
    {"map", R"({{ users|map(attribute='name')|join(',') }} {{ users|map(attribute='age', default=0)|list }} {{ ['a','b']|map('upper')|list }})", R"(bob,Al,cy [3, 5, 0] ['A', 'B'])"},
    {"select reject selectattr rejectattr", R"({{ xs|select('odd')|list }} {{ xs|reject('odd')|list }} {{ users|selectattr('age')|map(attribute='name')|list }} {{ users|rejectattr('name', 'equalto', 'bob')|map(attribute='name')|list }} {{ messages|selectattr('role', 'equalto', 'user')|list|length }} {{ [0, 1, '', 'a']|select|list }})", R"([3, 1] [2] ['bob', 'Al'] ['Al', 'cy'] 1 [1, 'a'])"},
    {"items dictsort", R"({% for k, v in d|items %}{{ k }}{{ v }}{% endfor %} {% for k, v in d|dictsort %}{{ k }}{{ v }}{% endfor %} {{ d|dictsort(by='value', reverse=true)|map('first')|join }})", R"(b2a1 a1b2 ba)"},
    {"unique sort sum abs round", R"({{ [1, 2, 1, 3]|unique|list }} {{ xs|sort }} {{ xs|sort(reverse=true) }} {{ users|sort(attribute='name')|map(attribute='name')|list }} {{ xs|sum }} {{ users|sum(attribute='age', start=1) if false else 0 }} {{ -2.5|abs }} {{ 2.567|round(2) }} {{ 2.5|round }} {{ 2.1|round(0, 'ceil') }})", R"([1, 2, 3] [1, 2, 3] [3, 2, 1] ['Al', 'bob', 'cy'] 6 0 2.5 2.57 2.0 3.0)"},
    {"indent", R"({{ 'a
b

c'|indent }}|{{ 'a
b'|indent(2, first=true) }}|{{ 'a

b'|indent(2, blank=true) }})", R"(a
    b

    c|  a
  b|a
  
  b)"},
    {"safe escape wordcount", R"({{ '<b>'|safe }} {{ '<a href="x">&'|escape }} {{ 'one two  three'|wordcount }})", R"(<b> &lt;a href=&#34;x&#34;&gt;&amp; 3)"},
    {"min max reverse", R"({{ xs|min }} {{ xs|max }} {{ xs|reverse|list }} {{ 'abc'|reverse }})", R"(1 3 [2, 1, 3] cba)"},
    };
    run(cases);
}

TEST_CASE("jinja methods and globals: str/dict methods, range, dict, namespace") {
    static const Case cases[] = {
    {"string methods", R"([{{ s.strip() }}] [{{ s.lstrip() }}] [{{ s.rstrip() }}] {{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a b c'.split(' ', 1) }} {{ 'abc'.startswith('ab') }} {{ 'abc'.endswith(('x', 'c')) }} {{ 'Ab'.upper() }}{{ 'Ab'.lower() }} {{ 'hello world'.title() }} {{ 'aXa'.replace('a', 'b') }} {{ 'xxhixx'.strip('x') }})", R"([Hello World] [Hello World  ] [  Hello World] ['a', 'b', '', 'c'] ['a', 'b'] ['a', 'b c'] True True ABab Hello World bXb hi)"},
    {"str.format", R"({{ '{} and {}'.format('a', 1) }} {{ '{0}{0}'.format('z') }} {{ '{name}!'.format(name='x') }})", R"(a and 1 zz x!)"},
    {"dict methods", R"({{ d.keys()|list }} {{ d.values()|list }} {{ d.get('a') }} {{ d.get('zz', 'dflt') }} {{ d.get('zz') }} {% for k, v in d.items() %}{{ k }}:{{ v }}{% endfor %})", R"(['b', 'a'] [2, 1] 1 dflt None b:2a:1)"},
    {"range dict namespace", R"({{ range(3)|list }} {{ range(1, 10, 3)|list }} {{ range(5, 0, -2)|list }} {{ dict(a=1, b='x') }} {{ namespace(a=1).a }})", R"([0, 1, 2] [1, 4, 7] [5, 3, 1] {'a': 1, 'b': 'x'} 1)"},
    {"think split like DeepSeek", R"({% set c = 'reasoning</think>answer' %}{% if '</think>' in c %}{{ c.split('</think>')[-1] }}{% endif %})", R"(answer)"},
    {"python str of values", R"({{ [1, 'it\'s', {'k': none}] }} {{ 1e20 }} {{ 1.5e-7 }} {{ 100.0 }} {{ 123456789012345678 }} {{ 0.5 }})", R"([1, "it's", {'k': None}] 1e+20 1.5e-07 100.0 123456789012345678 0.5)"},
    };
    run(cases);
}

TEST_CASE("jinja errors: syntax errors name the line, runtime errors the cause") {
    static const Case cases[] = {
    {"unknown filter", R"(line1
{{ x|nosuchfilter }})", "line 2: unknown filter 'nosuchfilter'"},
    {"unknown test", R"({% if x is frobbed %}{% endif %})", "unknown test 'frobbed'"},
    {"unclosed if", R"(a
{% if true %}
b)", "line 3"},
    {"unknown tag", R"(

{% frobnicate %})", "line 3: unknown or unsupported tag 'frobnicate'"},
    {"unexpected endfor", R"({% endfor %})", "unexpected 'endfor'"},
    {"unterminated string", R"({{ 'abc }})", "unterminated string"},
    {"bad expression", R"(
{{ 1 + }})", "line 2"},
    {"attribute of undefined", R"({{ nothing.attr }})", "'nothing' is undefined"},
    {"arithmetic on undefined", R"(


{{ nothing + 1 }})", "line 4: 'nothing' is undefined"},
    {"str plus int", R"({{ 'a' + 1 }})", "can only concatenate str (not \"int\") to str"},
    {"division by zero", R"({{ 1 // 0 }})", "integer division or modulo by zero"},
    {"raise_exception", R"({{ raise_exception('Only user and assistant roles are supported!') }})", "chat template raised: Only user and assistant roles are supported!"},
    {"huge range", R"({% for i in range(10**12) %}{% endfor %})", "Range too big"},
    {"list append refused", R"({% set l = [] %}{{ l.append(1) }})", "unsafe"},
    {"break outside loop", R"({% break %})", "outside of a for loop"},
    };
    for (const auto& c : cases) {
        INFO(c.name << ": " << c.source);
        bool threw = false;
        try {
            render(c.source);
        } catch (const kiln::ChatTemplateError& e) {
            threw = true;
            CHECK_MESSAGE(std::string(e.what()).find(c.expected) != std::string::npos, e.what());
        }
        CHECK(threw);
    }
}
