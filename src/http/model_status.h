#pragma once
// Each model of the registry as /v1/status and /metrics report it: its state (loaded, loading, available),
// memory, requests, load times, tokens per second and, while loaded, its engine's slots, queue, KV pool and
// prefix cache.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "registry/model_registry.h"

namespace pensieve::http {

nlohmann::json model_status_json(const registry::ModelStatus& m);
// Prometheus lines for every model, loaded or not (the engine gauges of loaded ones are in Metrics::render).
std::string registry_metrics(const std::vector<registry::ModelStatus>& models);

}  // namespace pensieve::http
