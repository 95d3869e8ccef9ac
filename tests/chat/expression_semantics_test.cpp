// Expression and statement semantics, each expected value worked out by hand from Python / jinja2 rules.
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "chat/chat_template.h"

using pensieve::chat::ChatTemplate;
using pensieve::chat::RenderOptions;
using pensieve::chat::TemplateError;
using Json = nlohmann::ordered_json;

namespace {

std::string render(const std::string& source, const Json& context = Json::object()) {
  return ChatTemplate(source).render(context);
}

struct Case {
  const char* source;
  const char* expected;
};

void expect_all(const std::vector<Case>& cases) {
  for (const auto& c : cases) {
    try {
      EXPECT_EQ(render(c.source), c.expected) << "template: " << c.source;
    } catch (const TemplateError& e) {
      ADD_FAILURE() << "template: " << c.source << " failed: " << e.what();
    }
  }
}

TEST(ExpressionSemantics, PrintsValuesLikePythonStr) {
  expect_all({
      {"{{ none }}|{{ true }}|{{ False }}", "None|True|False"},
      {"{{ 1.0 }} {{ 2.5 }} {{ 0.1 + 0.2 }} {{ 1e20 }} {{ 1.5e-7 }}", "1.0 2.5 0.30000000000000004 1e+20 1.5e-07"},
      {"{{ [1, 'a', none, true] }}", "[1, 'a', None, True]"},
      {"{{ {'a': \"it's\", 'b': [2]} }}", "{'a': \"it's\", 'b': [2]}"},
      {"{{ (1,) }} {{ (1, 2) }} {{ () }}", "(1,) (1, 2) ()"},
      {"{{ 'a\\tb\\u00e9\\n' }}", "a\tb\xc3\xa9\n"},
      {"{{ 'ab' 'cd' }}", "abcd"},
  });
}

TEST(ExpressionSemantics, ArithmeticFollowsPython) {
  expect_all({
      {"{{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 % -3 }}", "3 -4 2 -2"},
      {"{{ 7 / 2 }} {{ 4 / 2 }} {{ 2 ** 10 }} {{ 2 ** -1 }}", "3.5 2.0 1024 0.5"},
      {"{{ 1 + 2.5 }} {{ true + 1 }} {{ -(3) }} {{ 10 - 2 * 3 }}", "3.5 2 -3 4"},
      {"{{ 'ab' * 3 }} {{ [0] * 2 }} {{ [1] + [2] }}", "ababab [0, 0] [1, 2]"},
      {"{{ 1 ~ 'x' ~ none ~ missing }}", "1xNone"},
      {"{{ '%s-%d' % ('a', 3) }}", "a-3"},
  });
}

TEST(ExpressionSemantics, ComparisonsMembershipAndLogic) {
  expect_all({
      {"{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 1 == 1.0 }} {{ 'a' != 'b' }}", "True False True True"},
      {"{{ 'a' in 'cat' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 'x' not in [] }}", "True True True True"},
      {"{{ 0 or 'x' }}|{{ '' and 'y' }}|{{ none or [] }}|{{ 1 and 2 }}", "x||[]|2"},
      {"{{ not 1 == 2 }} {{ not [] }} {{ [] == [] }} {{ {'a': 1} == {'a': 1} }}", "True True True True"},
      {"[{{ 'a' if false }}] {{ 'a' if 0 else 'b' }} {{ 'y' if [0] else 'n' }}", "[] b y"},
  });
}

TEST(ExpressionSemantics, SlicingAndIndexing) {
  expect_all({
      {"{{ [1, 2, 3, 4][1:] }} {{ [1, 2, 3, 4, 5][-2:] }} {{ [1, 2, 3, 4, 5][::2] }}", "[2, 3, 4] [4, 5] [1, 3, 5]"},
      {"{{ 'hello'[::-1] }} {{ 'hello'[1:-1] }} {{ 'hello'[-1] }} {{ 'hello'[10:] }}", "olleh ell o "},
      {"{{ 'h\xc3\xa9llo'[1:3] }} {{ 'h\xc3\xa9llo'|length }}", "\xc3\xa9l 5"},
      {"{{ [1, 2, 3][::-1] }} {{ [1, 2, 3][5:1:-1] }} {{ [1, 2, 3][-1] }}", "[3, 2, 1] [3] 3"},
      {"{{ {'a': 1}['a'] }} {{ {'a': 1}.a }} {{ [[1, 2]][0][1] }}", "1 1 2"},
  });
}

TEST(ExpressionSemantics, StringMethods) {
  expect_all({
      {"[{{ '  x  '.strip() }}] [{{ 'xxhixx'.strip('x') }}] [{{ '\\n\\nhi'.lstrip('\\n') }}] [{{ 'hi  '.rstrip() }}]",
       "[x] [hi] [hi] [hi]"},
      {"{{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a b c'.split(' ', 1) }}",
       "['a', 'b', '', 'c'] ['a', 'b'] ['a', 'b c']"},
      {"{{ 'x</think>y'.split('</think>')[-1] }}", "y"},
      {"{{ 'Hello World'.lower() }} {{ 'hello world'.title() }} {{ 'hELLO'.capitalize() }} {{ 'ab'.upper() }}",
       "hello world Hello World Hello AB"},
      {"{{ 'aaa'.replace('a', 'b', 2) }} {{ 'hello'.find('l') }} {{ 'hello'.find('z') }} {{ 'hello'.count('l') }}",
       "bba 2 -1 2"},
      {"{{ '{} and {name}'.format(1, name='x') }} {{ '-'.join(['a', 'b']) }}", "1 and x a-b"},
      {"{{ 'abc'.startswith('ab') }} {{ 'abc'.endswith(('x', 'c')) }} {{ 'abc'.startswith('c') }}", "True True False"},
  });
}

TEST(ExpressionSemantics, DictMethodsKeepInsertionOrder) {
  expect_all({
      {"{% for k, v in {'b': 1, 'a': 2}.items() %}{{ k }}={{ v }};{% endfor %}", "b=1;a=2;"},
      {"{{ {'a': 1}.get('z', 5) }} {{ {'a': 1}.get('a') }} {{ {'a': 1}.get('z') }}", "5 1 None"},
      {"{{ {'b': 1, 'a': 2}.keys()|list }} {{ {'b': 1, 'a': 2}.values()|list }}", "['b', 'a'] [1, 2]"},
      {"{% for k in {'y': 1, 'x': 2} %}{{ k }}{% endfor %}", "yx"},
  });
}

TEST(StatementSemantics, LoopVariables) {
  expect_all({
      {"{% for x in 'abc' %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.length }} {% endfor %}",
       "10323 21213 32103 "},
      {"{% for x in [1, 2, 3] %}{{ loop.first }}{{ loop.last }} {% endfor %}", "TrueFalse FalseFalse FalseTrue "},
      {"{% for x in [1, 2, 3] %}{{ loop.previtem }}-{{ loop.nextitem }},{% endfor %}", "-2,1-3,2-,"},
      {"{% for x in [1, 2, 3] %}{{ loop.cycle('a', 'b') }}{% endfor %}", "aba"},
      {"{% for x in [] %}x{% else %}empty{% endfor %}", "empty"},
      {"{% for x in range(10) if x is odd %}{{ loop.index }}:{{ x }} {% endfor %}", "1:1 2:3 3:5 4:7 5:9 "},
      {"{% for x in range(10) %}{% if x == 4 %}{% break %}{% endif %}{% if x is even %}{% continue %}{% endif %}{{ x }}{% endfor %}",
       "13"},
      {"{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }} {% endfor %}", "3 7 "},
      {"{{ range(3)|list }} {{ range(1, 7, 2)|list }} {{ range(3, 0, -1)|list }}", "[0, 1, 2] [1, 3, 5] [3, 2, 1]"},
  });
}

TEST(StatementSemantics, SetScopingAndNamespaces) {
  expect_all({
      {"{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{% endfor %}{{ x }}", "1"},
      {"{% set ns = namespace(x=1) %}{% for i in [1, 2] %}{% set ns.x = ns.x + i %}{% endfor %}{{ ns.x }}", "4"},
      {"{% set x = 1 %}{% if true %}{% set x = 2 %}{% endif %}{{ x }}", "2"},
      {"{% set a, b = 1, 2 %}{{ b }}{{ a }}", "21"},
      {"{% set x %}hi {{ 1 }}{% endset %}[{{ x }}]", "[hi 1]"},
      {"{% set x | upper %}shout{% endset %}{{ x }}", "SHOUT"},
  });
}

TEST(StatementSemantics, MacrosCallsFiltersAndRaw) {
  expect_all({
      {"{% macro m(a, b='B') %}{{ a }}{{ b }}{% endmacro %}{{ m('A') }}{{ m('A', b='C') }}{{ m(b='D', a='E') }}",
       "ABACED"},
      {"{% macro w() %}<{{ caller() }}>{% endmacro %}{% call w() %}x{% endcall %}", "<x>"},
      {"{% macro w() %}{{ caller(2) }}{% endmacro %}{% call(n) w() %}n={{ n }}{% endcall %}", "n=2"},
      {"{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(3) }}", "321"},
      {"{% filter upper %}abc{{ 'd' }}{% endfilter %}", "ABCD"},
      {"{% raw %}{{ x }}{% if %}{% endraw %}", "{{ x }}{% if %}"},
      {"a{# a comment #}b", "ab"},
  });
}

TEST(StatementSemantics, WhitespaceControlAsHfConfiguresIt) {
  expect_all({
      {"{% if true %}\nA\n{% endif %}\nB", "A\nB"},                        // trim_blocks
      {"  {% if true %}\n  x\n  {% endif %}\ny", "  x\ny"},                // lstrip_blocks
      {"x  {{- 1 -}}  y", "x1y"},                                          // explicit stripping
      {"a\n  {%- if true %}b{% endif -%}\n  c", "abc"},
      {"  {%+ if true %}x{% endif %}", "  x"},                             // '+' keeps the indentation
      {"{{ 1 }}\n{{ 2 }}", "1\n2"},                                        // no trimming after {{ }}
      {"line\n", "line"},                                                  // one trailing newline dropped
      {"a {% if true %}b{% endif %}", "a b"},                              // not at line start: kept
      {"  {# c #}\nz", "z"},                                               // comments trim and lstrip too
  });
}

TEST(TestsAndFilters, Tests) {
  expect_all({
      {"{{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 9 is divisibleby(2) }}", "True True True False"},
      {"{{ none is none }} {{ 'a' is string }} {{ {} is mapping }} {{ [] is mapping }}", "True True True False"},
      {"{{ 1 is number }} {{ true is number }} {{ true is integer }} {{ 1 is integer }} {{ 1.0 is float }}",
       "True True False True True"},
      {"{{ x is defined }} {{ x is undefined }} {{ [1] is sequence }} {{ 'a' is iterable }} {{ 1 is iterable }}",
       "False True True True False"},
      {"{{ 'x' is in ['x'] }} {{ 'ab' is lower }} {{ 'AB' is upper }} {{ 2 is eq 2 }} {{ 2 is not equalto 3 }}",
       "True True True True True"},
      {"{{ true is true }} {{ 1 is true }} {{ false is false }} {{ true is boolean }} {{ 1 is boolean }}",
       "True False True True False"},
  });
}

TEST(TestsAndFilters, JsonFilterMatchesHfTojson) {
  expect_all({
      {"{{ {'a': [1, 2.5, none, true], 'b': '\xc3\xa9\"/'}|tojson }}", "{\"a\": [1, 2.5, null, true], \"b\": \"\xc3\xa9\\\"/\"}"},
      {"{{ {'a': [1], 'b': {}}|tojson(indent=2) }}", "{\n  \"a\": [\n    1\n  ],\n  \"b\": {}\n}"},
      {"{{ {'b': 1, 'a': 2}|tojson }} {{ {'b': 1, 'a': 2}|tojson(sort_keys=true) }}", "{\"b\": 1, \"a\": 2} {\"a\": 2, \"b\": 1}"},
      {"{{ 'x\\ny'|tojson }} {{ [1, 2]|tojson(separators=(',', ':')) }}", "\"x\\ny\" [1,2]"},
      {"{{ '\xc3\xa9'|tojson(ensure_ascii=true) }}", "\"\\u00e9\""},
  });
}

TEST(TestsAndFilters, CommonFilters) {
  expect_all({
      {"[{{ '  a  '|trim }}] {{ 'h\xc3\xa9llo'|length }} {{ [1, 2]|count }} {{ ['a', 'b']|join(', ') }} {{ [1, 2]|join }}",
       "[a] 5 2 a, b 12"},
      {"{{ x|default('d') }}|{{ ''|default('d') }}|{{ ''|default('d', true) }}|{{ none|d('n') }}", "d||d|None"},
      {"{{ 'ab'|upper }} {{ 'AB'|lower }} {{ 'aXa'|replace('a', 'b') }} {{ 'hello world'|title }} {{ 'hi'|capitalize }}",
       "AB ab bXb Hello World Hi"},
      {"{% set m = [{'r': 'u', 'n': 1}, {'r': 'a', 'n': 2}, {'r': 'u', 'n': 3}] %}"
       "{{ m|selectattr('r', 'equalto', 'u')|map(attribute='n')|list }} {{ m|rejectattr('r', 'eq', 'u')|list|length }}",
       "[1, 3] 1"},
      {"{{ ['a', 'b']|map('upper')|join }} {{ [0, 1, 2]|select|list }} {{ [1, 2, 3]|reject('odd')|list }}",
       "AB [1, 2] [2]"},
      {"{{ [3, 1, 2]|first }} {{ [3, 1, 2]|last }} {{ 'ab'|list }} {{ 12|string ~ '!' }}", "3 2 ['a', 'b'] 12!"},
      {"{{ '42'|int }} {{ 'x'|int }} {{ 3.9|int }} {{ '2.5'|float }} {{ -3|abs }} {{ 2.5|round }} {{ 3.5|round }} {{ 2.567|round(2) }}",
       "42 0 3 2.5 3 2.0 4.0 2.57"},  // Python's round() ties to even
      {"{{ ['a', 'A', 'b']|unique|list }} {{ [3, 1, 2]|sort }} {{ [3, 1, 2]|sort(reverse=true) }} {{ [1, 2]|reverse|list }}",
       "['a', 'b'] [1, 2, 3] [3, 2, 1] [2, 1]"},
      {"{{ [{'n': 2}, {'n': 1}]|sort(attribute='n')|map(attribute='n')|list }} {{ {'b': 1, 'a': 2}|dictsort }}",
       "[1, 2] [('a', 2), ('b', 1)]"},
      {"{{ 'a\\nb'|indent(2) }}|{{ 'a\\nb'|indent(2, true) }}", "a\n  b|  a\n  b"},
      {"{{ {'a': 1}|items|list }} {{ [1, 2, 3, 4, 5]|batch(2)|list }} {{ [1, 2, 3]|sum }}", "[('a', 1)] [[1, 2], [3, 4], [5]] 6"},
      {"{{ '<a>'|e }} {{ '<a>'|safe }}", "&lt;a&gt; <a>"},
  });
}

TEST(UndefinedSemantics, BehavesLikeJinjaDefaultUndefined) {
  expect_all({
      {"[{{ missing }}]", "[]"},
      {"[{% for x in missing %}x{% endfor %}]", "[]"},
      {"{{ missing|length }} {{ missing is defined }} {{ none.attr is defined }} {{ [1].foo is defined }}",
       "0 False False False"},
      {"{{ {'a': 1}.b is defined }} {{ missing ~ 'a' }} {{ 'x' in missing }}", "False a False"},
  });
  EXPECT_THROW(render("{{ missing.attr }}"), TemplateError);
  EXPECT_THROW(render("{{ missing['k'] }}"), TemplateError);
  EXPECT_THROW(render("{{ missing + 'a' }}"), TemplateError);
  EXPECT_THROW(render("{{ missing() }}"), TemplateError);
  EXPECT_THROW(render("{{ [1].startswith('a') }}"), TemplateError);
  EXPECT_THROW(render("{{ 'a' + 1 }}"), TemplateError);
  EXPECT_THROW(render("{{ 1 / 0 }}"), TemplateError);
}

TEST(Errors, RaiseExceptionCarriesTheTemplatesMessage) {
  try {
    render("{{ raise_exception('Roles must alternate') }}");
    FAIL() << "no exception";
  } catch (const TemplateError& e) {
    EXPECT_TRUE(e.raised_by_template());
    EXPECT_STREQ(e.what(), "Roles must alternate");
  }
}

TEST(Errors, OtherFailuresAreNotRaisedByTheTemplate) {
  auto kind_of = [](const std::string& source) {
    try {
      render(source);
    } catch (const TemplateError& e) {
      return e.kind();
    }
    return static_cast<TemplateError::Kind>(-1);
  };
  EXPECT_EQ(kind_of("{% if %}"), TemplateError::Kind::Syntax);
  EXPECT_EQ(kind_of("{% for x in y %}"), TemplateError::Kind::Syntax);
  EXPECT_EQ(kind_of("{{ 'a' 'b }}"), TemplateError::Kind::Syntax);
  EXPECT_EQ(kind_of("{{ 1|no_such_filter }}"), TemplateError::Kind::Runtime);
  // HF renders in an ImmutableSandboxedEnvironment: mutating a list is refused.
  EXPECT_EQ(kind_of("{% set x = [] %}{{ x.append(1) }}"), TemplateError::Kind::Runtime);
  EXPECT_EQ(kind_of("{% set x = 1 %}{% set x.y = 2 %}"), TemplateError::Kind::Runtime);
}

TEST(Context, VariablesAndStrftimeNow) {
  Json ctx = Json::parse(R"({"messages": [{"role": "user", "content": "hi"}], "n": 3, "f": 0.5, "flag": false})");
  EXPECT_EQ(render("{{ messages[0].role }}:{{ messages[0]['content'] }} {{ n * 2 }} {{ f }} {{ flag }}", ctx),
            "user:hi 6 0.5 False");
  RenderOptions options;
  std::tm t{};
  t.tm_year = 126;
  t.tm_mon = 0;
  t.tm_mday = 15;
  t.tm_hour = 9;
  t.tm_min = 30;
  options.now = t;
  EXPECT_EQ(ChatTemplate("{{ strftime_now('%d %b %Y %H:%M') }}").render(Json::object(), options), "15 Jan 2026 09:30");
}

TEST(Concurrency, OneTemplateRendersFromManyThreads) {
  const ChatTemplate tmpl(
      "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{{ m.content }}{% endfor %}:{{ ns.n }}");
  Json ctx = Json::parse(R"({"messages": [{"content": "a"}, {"content": "b"}, {"content": "c"}]})");
  std::vector<std::string> results(8);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < results.size(); ++i) {
    threads.emplace_back([&, i] {
      for (int k = 0; k < 200; ++k) results[i] = tmpl.render(ctx);
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& r : results) EXPECT_EQ(r, "abc:3");
}

}  // namespace
