// GET /v1/models/{id} over a real socket: one model by name (percent-escapes decoded), 404 and 405 in
// OpenAI's error shape.
#include "test_client.h"

namespace pensieve::testing {
namespace {

TEST(ModelRoute, OneModelByName) {
  ServerHarness h;
  auto r = h.request("GET", "/v1/models/tiny");
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = r.body_json();
  EXPECT_EQ(j["id"], "tiny");
  EXPECT_EQ(j["object"], "model");
  EXPECT_EQ(j["owned_by"], "pensieve");
  EXPECT_TRUE(j["created"].is_number_integer());
  // "%6E" is "n": clients escape ids such as "org/name" this way.
  EXPECT_EQ(h.request("GET", "/v1/models/ti%6Ey").body_json()["id"], "tiny");
}

TEST(ModelRoute, UnknownModelAndWrongMethod) {
  ServerHarness h;
  auto r = h.request("GET", "/v1/models/gpt-4");
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_NE(r.body_json()["error"]["message"].get<std::string>().find("gpt-4"), std::string::npos);
  EXPECT_EQ(r.body_json()["error"]["param"], "model");
  EXPECT_EQ(h.request("POST", "/v1/models/tiny", "{}").status, 405);
  EXPECT_EQ(h.request("GET", "/v1/models/").status, 404);
}

}  // namespace
}  // namespace pensieve::testing
