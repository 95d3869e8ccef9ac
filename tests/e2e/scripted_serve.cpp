// A `pensieve serve` whose engine is scripted (tests/api/fake_engine.h) rather than a model: the real HTTP
// server and API adapters, a real tokenizer and chat template, and an engine that "generates" a fixed reply
// chosen from the prompt. The fixture models have random weights and never write a tool call; this lets the
// official SDKs drive a whole agent loop (tool call out, result back in, answer) over the wire.
//
//   pensieve_scripted_serve TOKENIZER TEMPLATE NAME   -> prints "listening on http://127.0.0.1:PORT"
//
// Replies: a prompt holding a tool result ("<tool_response>", as Qwen-style templates write it) gets an answer;
// a prompt offering tools ("<tools>") gets a streamed-in-pieces <tool_call> for get_weather; if the prompt also
// asks for two cities, two calls; any other prompt gets plain text. Reasoning (<think>…</think>) comes first
// when the last user turn says "Think first".
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "../api/fake_engine.h"
#include "http/server.h"
#include "tokenizer/tokenizer.h"

namespace {

std::string read_file(const char* path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

bool has(const std::string& text, const char* what) { return text.find(what) != std::string::npos; }

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s TOKENIZER TEMPLATE NAME\n", argv[0]);
    return 2;
  }
  using namespace pensieve;
  const tokenizer::Tokenizer tok = tokenizer::Tokenizer::load(argv[1]);
  testing::FakeEngine engine;
  engine.step = std::chrono::milliseconds(1);
  engine.script_for = [&tok](const engine::GenerationRequest& r) -> std::vector<std::string> {
    const std::string prompt = tok.decode(r.prompt, /*render_special=*/true);
    const size_t last_user = prompt.rfind("<|im_start|>user");
    const std::string tail = last_user == std::string::npos ? prompt : prompt.substr(last_user);
    if (has(tail, "<tool_response>")) return {"It is 18", " degrees in Paris."};
    std::vector<std::string> out;
    if (has(tail, "Think first")) out = {"<think>\nThe user", " wants the weather.\n</th", "ink>\n\n"};
    if (has(prompt, "<tools>")) {
      out.insert(out.end(), {"Let me check.", "\n<tool", "_call>\n{\"name\": \"get_", "weather\", \"arguments\": ",
                             "{\"city\": \"Paris\"}}\n</tool_call>"});
      if (has(tail, "two cities")) {
        out.insert(out.end(), {"\n<tool_call>\n{\"name\": \"get_weather\", ", "\"arguments\": {\"city\": \"Rome\"}}",
                               "\n</tool_call>"});
      }
      return out;
    }
    out.insert(out.end(), {"Hello", ", world", "!"});
    return out;
  };
  api::ServedModel model(argv[3], engine, tok, read_file(argv[2]));
  http::ServerOptions options;
  options.port = 0;
  options.handle_signals = true;
  options.log = nullptr;
  options.shutdown_grace = std::chrono::milliseconds(500);
  http::Server server(options);
  server.serve_models({&model});
  std::printf("listening on http://127.0.0.1:%u\n", server.port());  // and ready: the model is attached
  std::fflush(stdout);
  server.run();
  engine.shutdown();
  return 0;
}
