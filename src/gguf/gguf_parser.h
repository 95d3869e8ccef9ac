#pragma once
// Internal to the gguf room: fills a GgufFile's metadata and tensor index from its bytes.
#include "gguf/gguf_file.h"

namespace pensieve::gguf {

class GgufParser {
 public:
  // Reads file.bytes_ into file's fields. Throws GgufError naming file.name_.
  static void parse_into(GgufFile& file);
};

}  // namespace pensieve::gguf
