// Masks over real vocabularies: the Llama 3 byte-level BPE (128k tokens) and a SentencePiece vocabulary.
#include "grammar/token_constraint.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

#include "grammar/gbnf.h"
#include "grammar/json_schema.h"
#include "tokenizer/tokenizer.h"

namespace pensieve::grammar {
namespace {

const std::string kFixtures = PENSIEVE_FIXTURES_DIR;

const tokenizer::Tokenizer& llama3() {
  static const auto tok = tokenizer::Tokenizer::load(kFixtures + "/tokenizers/llama3/tokenizer.json");
  return tok;
}

std::shared_ptr<const TokenVocabulary> llama3_vocabulary() {
  static const auto vocab = std::make_shared<const TokenVocabulary>(llama3());
  return vocab;
}

std::shared_ptr<TokenConstraint> constraint(const std::string& gbnf, std::shared_ptr<const TokenVocabulary> v) {
  return std::make_shared<TokenConstraint>(parse_gbnf(gbnf), std::move(v));
}

constexpr const char* kPersonSchema = R"({"type":"object","properties":{
    "name":{"type":"string","maxLength":12},"age":{"type":"integer"},
    "role":{"enum":["admin","user"]},"tags":{"type":"array","items":{"type":"string","maxLength":6},"maxItems":3}},
    "required":["name","role"],"additionalProperties":false})";

TEST(TokenMask, AllowsExactlyTheTokensWhoseBytesFit) {
  const auto& tok = llama3();
  auto c = constraint(R"(root ::= "{\"a\": " [0-9]+ "}")", llama3_vocabulary());
  const TokenMask& m = c->mask(c->start());
  // Independent check: a token is allowed iff its bytes are a prefix of {"a": or {"a": followed by digits...
  size_t expected = 0;
  const std::string head = "{\"a\": ";
  for (int32_t t = 0; t < tok.vocab_size(); ++t) {
    if (tokenizer::hidden_unless_special(tok.token_kind(t)) || tok.is_end_of_generation(t)) {
      EXPECT_FALSE(m.test(t)) << t;
      continue;
    }
    const std::string piece(tok.token_piece(t));
    bool ok = !piece.empty();
    for (size_t i = 0; ok && i < piece.size(); ++i) {
      if (i < head.size()) ok = piece[i] == head[i];
      else if (i == head.size()) ok = piece[i] >= '0' && piece[i] <= '9';
      else ok = (piece[i] >= '0' && piece[i] <= '9') || (piece[i] == '}' && i + 1 == piece.size());
    }
    EXPECT_EQ(m.test(t), ok) << "token " << t << " '" << piece << "'";
    expected += ok;
  }
  EXPECT_EQ(m.allowed, expected);
  EXPECT_TRUE(m.test(*tok.find_token("{\"")));
  EXPECT_FALSE(m.test(*tok.find_token("[")));
}

TEST(TokenMask, EndOfGenerationOnlyWhenComplete) {
  const auto& tok = llama3();
  auto c = constraint(R"(root ::= "ok" [0-9]*)", llama3_vocabulary());
  GrammarCursor cursor(c);
  const int32_t eot = *tok.find_token("<|eot_id|>");
  ASSERT_TRUE(tok.is_end_of_generation(eot));
  EXPECT_FALSE(cursor.allowed().test(eot));
  ASSERT_TRUE(cursor.advance(*tok.find_token("ok")));
  EXPECT_TRUE(cursor.accepting());
  EXPECT_FALSE(cursor.finished());
  EXPECT_TRUE(cursor.allowed().test(eot));
  EXPECT_FALSE(cursor.advance(*tok.find_token("x")));  // refused, state kept
  EXPECT_TRUE(cursor.advance(*tok.find_token("12")));
  auto done = constraint(R"(root ::= "ok")", llama3_vocabulary());
  GrammarCursor d(done);
  ASSERT_TRUE(d.advance(*tok.find_token("ok")));
  EXPECT_TRUE(d.finished());
}

TEST(TokenMask, TheTokenizationOfAValidDocumentIsAllowedStepByStep) {
  const auto& tok = llama3();
  auto c = constraint(json_schema_to_gbnf(SchemaJson::parse(kPersonSchema)), llama3_vocabulary());
  const std::string doc = "{\"name\": \"Zoë \\\"Z\\\"\", \"role\": \"admin\", \"tags\": [\"a\", \"bc\"]}";
  GrammarCursor cursor(c);
  for (int32_t t : tok.encode(doc)) {
    ASSERT_TRUE(cursor.allowed().test(t)) << "token '" << tok.token_piece(t) << "'";
    ASSERT_TRUE(cursor.advance(t));
  }
  EXPECT_TRUE(cursor.finished());
}

// Random walks: any sequence of allowed tokens, ended when the grammar finishes or allows EOS and the coin
// says so, decodes to a document that an independent parser reads and that has the schema's shape.
TEST(TokenMask, RandomWalksProduceValidDocuments) {
  const auto& tok = llama3();
  auto c = constraint(json_schema_to_gbnf(SchemaJson::parse(kPersonSchema)), llama3_vocabulary());
  std::mt19937 rng(7);
  for (int walk = 0; walk < 30; ++walk) {
    GrammarCursor cursor(c);
    std::vector<int32_t> out;
    bool ended = false;
    for (int step = 0; step < 400 && !ended; ++step) {
      const TokenMask& m = cursor.allowed();
      ASSERT_GT(m.allowed, 0u);
      std::vector<int32_t> allowed;
      for (int32_t t = 0; t < tok.vocab_size(); ++t) if (m.test(t)) allowed.push_back(t);
      const int32_t t = allowed[std::uniform_int_distribution<size_t>(0, allowed.size() - 1)(rng)];
      if (tok.is_end_of_generation(t)) break;
      ASSERT_TRUE(cursor.advance(t));
      out.push_back(t);
      ended = cursor.finished();
    }
    if (!ended && !cursor.accepting()) continue;  // cut by the step limit: nothing to check
    const std::string text = tok.decode(out);
    const auto j = nlohmann::json::parse(text);
    ASSERT_TRUE(j.is_object()) << text;
    ASSERT_TRUE(j.contains("name") && j["name"].is_string()) << text;
    EXPECT_LE(j["name"].get<std::string>().size(), 12u * 4) << text;
    ASSERT_TRUE(j["role"] == "admin" || j["role"] == "user") << text;
    if (j.contains("age")) {
      EXPECT_TRUE(j["age"].is_number_integer()) << text;
    }
    if (j.contains("tags")) {
      EXPECT_LE(j["tags"].size(), 3u) << text;
    }
    for (const auto& [k, v] : j.items()) EXPECT_TRUE(k == "name" || k == "age" || k == "role" || k == "tags") << k;
  }
}

TEST(TokenMask, SentencePieceVocabulary) {
  const auto tok = tokenizer::Tokenizer::load(kFixtures + "/vocab/ggml-vocab-llama-spm.gguf");
  auto vocab = std::make_shared<const TokenVocabulary>(tok);
  auto c = constraint(R"(root ::= " true" | " false")", vocab);
  GrammarCursor cursor(c);
  const auto ids = tok.encode(" true");  // may carry the dummy-prefix space as ▁
  const TokenMask& m = cursor.allowed();
  EXPECT_GT(m.allowed, 0u);
  EXPECT_TRUE(m.test(*tok.find_token("\xE2\x96\x81true")));  // "▁true" is " true"
  EXPECT_FALSE(m.test(*tok.find_token("true")));
  EXPECT_TRUE(m.test(*tok.find_token("<0x20>")));             // the byte-fallback space
  EXPECT_FALSE(ids.empty());
}

TEST(TokenMask, MasksAreCachedPerState) {
  auto c = constraint(json_schema_to_gbnf(SchemaJson::parse(kPersonSchema)), llama3_vocabulary());
  const TokenMask* first = &c->mask(c->start());
  EXPECT_EQ(first, &c->mask(c->start()));
  EXPECT_EQ(c->cached_masks(), 1u);
}

TEST(TokenMask, PastItsBudgetTheCacheStartsOverAndMasksStayRight) {
  const auto vocab = llama3_vocabulary();
  const std::string gbnf = json_schema_to_gbnf(SchemaJson::parse(kPersonSchema));
  const size_t one_mask = (static_cast<size_t>(vocab->size()) + 7) / 8;
  auto small = std::make_shared<TokenConstraint>(parse_gbnf(gbnf), vocab, 2 * one_mask);  // room for two
  auto big = constraint(gbnf, vocab);
  GrammarCursor a(small), b(big);
  for (int32_t t : llama3().encode("{\"name\": \"Al\", \"role\": \"user\"}")) {
    EXPECT_EQ(a.allowed().bits, b.allowed().bits);
    EXPECT_LE(small->cached_masks(), 2u);
    ASSERT_TRUE(a.advance(t));
    ASSERT_TRUE(b.advance(t));
  }
  EXPECT_TRUE(a.finished());
}

}  // namespace
}  // namespace pensieve::grammar
