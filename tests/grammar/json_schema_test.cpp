#include "grammar/json_schema.h"

#include <gtest/gtest.h>

#include "grammar/grammar_error.h"
#include "matcher.h"

namespace pensieve::grammar {
namespace {

using testing::matches;
using testing::schema;
using testing::viable_prefix;

TEST(JsonSchema, ObjectWithRequiredAndOptionalPropertiesInOrder) {
  auto a = schema(R"({"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},
                      "tags":{"type":"array","items":{"type":"string"}}},"required":["name"],
                      "additionalProperties":false})");
  EXPECT_TRUE(matches(a, R"({"name":"Ann"})"));
  EXPECT_TRUE(matches(a, R"({"name": "Ann", "age": 41})"));
  EXPECT_TRUE(matches(a, R"({"name":"Ann","tags":["a","b"]})"));
  EXPECT_TRUE(matches(a, "{\n  \"name\": \"A\\\"nn\\u00e9\",\n  \"age\": -3,\n  \"tags\": []\n}"));
  EXPECT_FALSE(matches(a, R"({})"));                        // name is required
  EXPECT_FALSE(matches(a, R"({"age":41})"));
  EXPECT_FALSE(matches(a, R"({"name":"Ann","extra":1})"));  // not declared
  EXPECT_FALSE(matches(a, R"({"name":"Ann",})"));
  EXPECT_FALSE(matches(a, R"({"name":"Ann","age":4.5})"));  // not an integer
  EXPECT_FALSE(matches(a, R"({"name":"Ann","age":007})"));
  EXPECT_FALSE(viable_prefix(a, "{\"name\":\"a\nb"));       // raw control character in a string
  EXPECT_FALSE(viable_prefix(a, R"({"name":"\q)"));          // unknown escape
  EXPECT_FALSE(viable_prefix(a, R"({"name":"\ud800)"));      // lone surrogate escape
}

TEST(JsonSchema, AllOptionalAllowsTheEmptyObject) {
  auto a = schema(R"({"type":"object","properties":{"a":{"type":"boolean"},"b":{"type":"null"}}})");
  EXPECT_TRUE(matches(a, "{}"));
  EXPECT_TRUE(matches(a, R"({"b":null})"));
  EXPECT_TRUE(matches(a, R"({"a":true,"b":null})"));
  EXPECT_FALSE(matches(a, R"({"b":null,"a":true})"));  // declared order only
}

TEST(JsonSchema, ArraysCountTheirItems) {
  auto a = schema(R"({"type":"array","items":{"type":"number"},"minItems":2,"maxItems":3})");
  EXPECT_FALSE(matches(a, "[1]"));
  EXPECT_TRUE(matches(a, "[1, -2.5e3]"));
  EXPECT_TRUE(matches(a, "[0,0.25,1E-2]"));
  EXPECT_FALSE(matches(a, "[1,2,3,4]"));
  auto empty = schema(R"({"type":"array","maxItems":0})");
  EXPECT_TRUE(matches(empty, "[]"));
  EXPECT_FALSE(matches(empty, "[1]"));
}

TEST(JsonSchema, EnumConstAndStringLengths) {
  auto e = schema(R"({"enum":["red","green",3,null,{"k":[1]}]})");
  EXPECT_TRUE(matches(e, R"("green")"));
  EXPECT_TRUE(matches(e, "3"));
  EXPECT_TRUE(matches(e, "null"));
  EXPECT_TRUE(matches(e, R"({"k":[1]})"));
  EXPECT_FALSE(matches(e, R"("blue")"));
  auto typed = schema(R"({"type":"string","enum":["a",1]})");
  EXPECT_FALSE(matches(typed, "1"));  // the enum value of the wrong type can never validate
  auto c = schema(R"({"const":"x\"y"})");
  EXPECT_TRUE(matches(c, R"("x\"y")"));
  auto len = schema(R"({"type":"string","minLength":2,"maxLength":3})");
  EXPECT_FALSE(matches(len, R"("a")"));
  EXPECT_TRUE(matches(len, R"("ab")"));
  EXPECT_TRUE(matches(len, R"("a\nc")"));  // an escape is one character
  EXPECT_TRUE(matches(len, "\"\xE2\x82\xAC\xE2\x82\xAC\""));
  EXPECT_FALSE(matches(len, R"("abcd")"));
}

TEST(JsonSchema, AnyOfTypeListsNullableAndRefs) {
  auto a = schema(R"({"$defs":{"node":{"type":"object","properties":{"v":{"type":"integer"},
                      "next":{"anyOf":[{"$ref":"#/$defs/node"},{"type":"null"}]}},"required":["v","next"]}},
                      "$ref":"#/$defs/node"})");
  EXPECT_TRUE(matches(a, R"({"v":1,"next":null})"));
  EXPECT_TRUE(matches(a, R"({"v":1,"next":{"v":2,"next":{"v":3,"next":null}}})"));
  EXPECT_FALSE(matches(a, R"({"v":1,"next":{"v":2}})"));
  auto t = schema(R"({"type":["string","integer"]})");
  EXPECT_TRUE(matches(t, R"("s")"));
  EXPECT_TRUE(matches(t, "12"));
  EXPECT_FALSE(matches(t, "true"));
  auto n = schema(R"({"type":"boolean","nullable":true})");
  EXPECT_TRUE(matches(n, "null"));
  EXPECT_TRUE(matches(n, "false"));
  auto one = schema(R"({"oneOf":[{"type":"integer"},{"type":"string","maxLength":1}]})");
  EXPECT_TRUE(matches(one, R"("x")"));
  EXPECT_FALSE(matches(one, R"("xy")"));
}

TEST(JsonSchema, MapsAndFreeObjects) {
  auto m = schema(R"({"type":"object","additionalProperties":{"type":"integer"}})");
  EXPECT_TRUE(matches(m, R"({"a":1,"b":2})"));
  EXPECT_FALSE(matches(m, R"({"a":"x"})"));
  auto any = Automaton(parse_gbnf(json_object_gbnf()));
  EXPECT_TRUE(matches(any, R"({"a":[1,{"b":null}],"c":"d"})"));
  EXPECT_FALSE(matches(any, R"([1])"));
  EXPECT_FALSE(matches(any, R"("x")"));
}

void expect_keyword(std::string_view schema_json, const std::string& keyword) {
  try {
    json_schema_to_gbnf(SchemaJson::parse(schema_json));
    ADD_FAILURE() << "no error for " << schema_json;
  } catch (const GrammarError& e) {
    EXPECT_EQ(e.keyword(), keyword) << e.what();
    EXPECT_NE(std::string(e.what()).find(keyword), std::string::npos) << e.what();
  }
}

TEST(JsonSchema, UnsupportedAndUnsatisfiableSchemasNameTheKeyword) {
  expect_keyword(R"({"type":"string","pattern":"^a"})", "pattern");
  expect_keyword(R"({"type":"number","exclusiveMinimum":0})", "exclusiveMinimum");
  expect_keyword(R"({"type":"number","minimum":0.5})", "minimum");
  expect_keyword(R"({"type":"integer","minimum":10,"maximum":5})", "minimum");
  expect_keyword(R"({"type":"integer","exclusiveMinimum":3,"exclusiveMaximum":4})", "exclusiveMinimum");
  expect_keyword(R"({"type":"object","properties":{"a":{"type":"number","multipleOf":2}}})", "multipleOf");
  expect_keyword(R"({"enum":[]})", "enum");
  expect_keyword(R"({"type":"array","minItems":3,"maxItems":2})", "minItems");
  expect_keyword(R"({"type":"string","minLength":3,"maxLength":2})", "minLength");
  expect_keyword(R"({"type":"object","required":["x"],"additionalProperties":false})", "required");
  expect_keyword(R"({"type":"strange"})", "type");
  expect_keyword(R"({"type":[]})", "type");
  expect_keyword(R"({"anyOf":[]})", "anyOf");
  expect_keyword(R"({"$ref":"#/$defs/missing"})", "$ref");
  expect_keyword(R"({"$ref":"http://example.com/s.json"})", "$ref");
  expect_keyword(R"({"allOf":[{"type":"string"},{"maxLength":2}]})", "allOf");
  expect_keyword(R"({"type":"array","items":[{"type":"string"}]})", "items");
}

TEST(JsonSchema, IgnoringUnsupportedKeywordsIsAnOption) {
  SchemaOptions lenient;
  lenient.ignore_unsupported = true;
  auto a = Automaton(parse_gbnf(json_schema_to_gbnf(SchemaJson::parse(R"({"type":"string","pattern":"^a"})"), lenient)));
  EXPECT_TRUE(testing::matches(a, R"("b")"));
}

TEST(JsonSchema, IntegerBoundsAdmitExactlyTheIntegersWithin) {
  auto a = schema(R"({"type":"integer","minimum":37,"maximum":4210})");
  for (int n = -60; n <= 5000; ++n) {
    ASSERT_EQ(matches(a, std::to_string(n)), n >= 37 && n <= 4210) << n;
  }
  auto b = schema(R"({"type":"integer","minimum":-15,"exclusiveMaximum":120})");
  for (int n = -200; n <= 200; ++n) {
    ASSERT_EQ(matches(b, std::to_string(n)), n >= -15 && n < 120) << n;
  }
  auto c = schema(R"({"type":"integer","maximum":-3})");
  EXPECT_TRUE(matches(c, "-3"));
  EXPECT_TRUE(matches(c, "-1234567"));
  EXPECT_FALSE(matches(c, "-2"));
  EXPECT_FALSE(matches(c, "0"));
  auto non_negative = schema(R"({"type":"integer","minimum":0})");
  EXPECT_TRUE(matches(non_negative, "0"));
  EXPECT_TRUE(matches(non_negative, "9876543210"));
  EXPECT_FALSE(matches(non_negative, "-1"));
  EXPECT_FALSE(matches(non_negative, "01"));
  auto draft4 = schema(R"({"type":"integer","minimum":5,"exclusiveMinimum":true,"maximum":7})");
  EXPECT_FALSE(matches(draft4, "5"));
  EXPECT_TRUE(matches(draft4, "6"));
  EXPECT_TRUE(matches(draft4, "7"));
}

TEST(JsonSchema, NumberBoundsWithWholeValues) {
  auto a = schema(R"({"type":"number","minimum":-3,"maximum":2})");
  for (const char* in : {"-3", "-2.5", "-0.5", "0", "0.0", "1.99", "2"}) EXPECT_TRUE(matches(a, in)) << in;
  for (const char* out : {"-3.5", "-4", "2.1", "3", "1e1"}) EXPECT_FALSE(matches(a, out)) << out;
  auto b = schema(R"({"type":"number","minimum":0})");
  EXPECT_TRUE(matches(b, "12345.75"));
  EXPECT_FALSE(matches(b, "-0.1"));
}

TEST(JsonSchema, AnnotationsAreIgnored) {
  auto a = schema(R"({"title":"T","description":"d","type":"string","format":"date-time","default":"x",
                      "examples":["y"],"$schema":"https://json-schema.org/draft/2020-12/schema"})");
  EXPECT_TRUE(matches(a, R"("2020")"));
}

}  // namespace
}  // namespace pensieve::grammar
