// Constrained decoding through the serving engine on the random-weight fixture model: whatever the weights
// say, every sampled output must be a document of the grammar. Outputs are checked with nlohmann's parser and
// plain field checks, not with the grammar code under test.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "engine_fixture.h"
#include "grammar/gbnf.h"
#include "grammar/json_schema.h"
#include "grammar/token_constraint.h"

namespace pensieve::engine::testing {
namespace {

std::shared_ptr<grammar::TokenConstraint> constraint_for(const std::string& gbnf) {
  static const auto vocab = std::make_shared<const grammar::TokenVocabulary>(*tiny_model().tokenizer);
  return std::make_shared<grammar::TokenConstraint>(grammar::parse_gbnf(gbnf), vocab);
}

constexpr const char* kSchema = R"({"type":"object","properties":{
  "id":{"type":"integer"},"ok":{"type":"boolean"},"color":{"enum":["red","green"]},
  "name":{"type":"string","maxLength":8},"items":{"type":"array","items":{"type":"integer"},"maxItems":3},
  "note":{"type":["string","null"],"maxLength":4}},
  "required":["id","ok","color","name"],"additionalProperties":false})";

void expect_valid(const std::string& text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not JSON: " << text << " (" << e.what() << ")";
    return;
  }
  ASSERT_TRUE(j.is_object()) << text;
  for (const auto& [key, value] : j.items()) {
    EXPECT_TRUE(key == "id" || key == "ok" || key == "color" || key == "name" || key == "items" || key == "note")
        << "undeclared property in " << text;
  }
  ASSERT_TRUE(j.contains("id") && j["id"].is_number_integer()) << text;
  ASSERT_TRUE(j.contains("ok") && j["ok"].is_boolean()) << text;
  ASSERT_TRUE(j.contains("color") && (j["color"] == "red" || j["color"] == "green")) << text;
  ASSERT_TRUE(j.contains("name") && j["name"].is_string()) << text;
  if (j.contains("items")) {
    ASSERT_TRUE(j["items"].is_array() && j["items"].size() <= 3) << text;
    for (const auto& v : j["items"]) EXPECT_TRUE(v.is_number_integer()) << text;
  }
  if (j.contains("note")) {
    EXPECT_TRUE(j["note"].is_null() || j["note"].is_string()) << text;
  }
}

TEST(ConstrainedDecoding, EverySampledOutputIsADocumentOfTheSchema) {
  auto e = make_engine({.parallel = 20});
  const auto grammar = constraint_for(grammar::json_schema_to_gbnf(grammar::SchemaJson::parse(kSchema)));
  std::mt19937 rng(11);
  std::vector<std::shared_ptr<RequestHandle>> handles;
  for (int i = 0; i < 20; ++i) {
    GenerationRequest r;
    r.prompt = random_prompt(rng, 12);
    r.sampling.temperature = 1.0f;
    r.sampling.seed = 1000 + static_cast<uint64_t>(i);
    r.stop.max_tokens = 1500;
    r.n = 2;
    r.grammar = grammar;
    handles.push_back(submit_ok(*e, r));
  }
  for (auto& h : handles) {
    const Outcome out = collect(*h, 2);
    for (int c = 0; c < 2; ++c) {
      EXPECT_EQ(out.finish[static_cast<size_t>(c)], FinishReason::Stop) << out.text[static_cast<size_t>(c)];
      expect_valid(out.text[static_cast<size_t>(c)]);
    }
  }
}

TEST(ConstrainedDecoding, PreemptedChoicesKeepTheirPlaceInTheGrammar) {
  // A pool too small for every running sequence: some are preempted and recomputed from their tokens.
  auto e = make_engine({.parallel = 8, .kv_blocks = 24});
  const auto grammar = constraint_for(grammar::json_schema_to_gbnf(grammar::SchemaJson::parse(kSchema)));
  std::mt19937 rng(17);
  std::vector<std::shared_ptr<RequestHandle>> handles;
  for (int i = 0; i < 8; ++i) {
    GenerationRequest r;
    r.prompt = random_prompt(rng, 20);
    r.sampling.seed = 50 + static_cast<uint64_t>(i);
    r.stop.max_tokens = 1500;
    r.grammar = grammar;
    handles.push_back(submit_ok(*e, r));
  }
  for (auto& h : handles) {
    const Outcome out = collect(*h, 1);
    EXPECT_EQ(out.finish[0], FinishReason::Stop) << out.text[0];
    expect_valid(out.text[0]);
  }
  EXPECT_GT(e->stats().preemptions, 0u);
}

TEST(ConstrainedDecoding, GreedyOutputFollowsTheGrammarAndStopsWhereItEnds) {
  auto e = make_engine({.parallel = 4});
  const auto grammar = constraint_for(R"(root ::= "answer: " ( "yes" | "no" ) "!")");
  std::mt19937 rng(3);
  GenerationRequest r = greedy_request(random_prompt(rng, 9), 100);
  r.stop.ignore_eos = false;
  r.grammar = grammar;
  const Outcome out = collect(*submit_ok(*e, r), 1);
  EXPECT_TRUE(out.text[0] == "answer: yes!" || out.text[0] == "answer: no!") << out.text[0];
  EXPECT_EQ(out.finish[0], FinishReason::Stop);
  EXPECT_LT(out.tokens[0].size(), 100u);
}

TEST(ConstrainedDecoding, EndOfSequenceComesOnlyOnceTheGrammarIsComplete) {
  auto e = make_engine({.parallel = 4});
  // Digits may go on forever; the end-of-sequence token is allowed after the first one.
  const auto grammar = constraint_for(R"(root ::= [0-9]+)");
  std::mt19937 rng(5);
  for (uint64_t seed = 0; seed < 6; ++seed) {
    GenerationRequest r;
    r.prompt = random_prompt(rng, 6);
    r.sampling.seed = seed;
    r.sampling.logit_bias = {{*tiny_model().tokenizer->eos_id(), 8.0f}};  // EOS as likely as it can be
    r.stop.max_tokens = 50;
    r.grammar = grammar;
    const Outcome out = collect(*submit_ok(*e, r), 1);
    ASSERT_FALSE(out.text[0].empty());
    EXPECT_EQ(out.text[0].find_first_not_of("0123456789"), std::string::npos) << out.text[0];
    EXPECT_EQ(out.finish[0], FinishReason::Stop);  // by the favoured EOS, well before max_tokens
  }
}

}  // namespace
}  // namespace pensieve::engine::testing
