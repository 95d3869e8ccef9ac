#include "chat/interpreter.h"

#include <cmath>
#include <ctime>

#include "chat/builtins.h"
#include "chat/template_error.h"

namespace pensieve::chat {

namespace {

// Variables visible at one level: the globals, the template's top level, a for-loop iteration, a macro call.
struct Scope {
  std::shared_ptr<Scope> parent;
  DictObject vars;
};

constexpr int kMaxCallDepth = 200;

int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

int64_t int_pow(int64_t base, int64_t exp) {
  int64_t result = 1;
  while (exp > 0) {
    if (exp & 1) result *= base;
    base *= base;
    exp >>= 1;
  }
  return result;
}

// "%s" % value, the printf-style formatting some templates use; %s, %d, %r and %% only.
std::string percent_format(const std::string& fmt, const Value& args) {
  std::vector<Value> values = args.is_list() && args.list()->is_tuple ? args.list()->items : std::vector<Value>{args};
  std::string out;
  size_t next = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%' || i + 1 == fmt.size()) {
      out += fmt[i];
      continue;
    }
    char spec = fmt[++i];
    if (spec == '%') {
      out += '%';
      continue;
    }
    if (next >= values.size()) fail_runtime("TypeError", "not enough arguments for format string");
    const Value& v = values[next++];
    if (spec == 's') {
      out += to_str(v);
    } else if (spec == 'r') {
      out += to_repr(v);
    } else if (spec == 'd' || spec == 'i') {
      if (!v.is_number()) fail_runtime("TypeError", "%d format: a number is required, not " + type_name(v));
      out += std::to_string(v.is_float() ? static_cast<int64_t>(v.as_double()) : v.as_int());
    } else {
      fail_runtime("ValueError", std::string("unsupported format character '") + spec + "'");
    }
  }
  if (next < values.size()) fail_runtime("TypeError", "not all arguments converted during string formatting");
  return out;
}

[[noreturn]] void unsupported_operands(const std::string& op, const Value& a, const Value& b) {
  if (op == "+" && (a.is_string() || a.is_list())) {
    fail_runtime("TypeError", "can only concatenate " + type_name(a) + " (not \"" + type_name(b) + "\") to " + type_name(a));
  }
  fail_runtime("TypeError", "unsupported operand type(s) for " + op + ": '" + type_name(a) + "' and '" + type_name(b) + "'");
}

Value repeat(const Value& seq, int64_t times) {
  if (seq.is_string()) {
    std::string out;
    for (int64_t i = 0; i < times; ++i) out += seq.str();
    return Value(out);
  }
  std::vector<Value> out;
  for (int64_t i = 0; i < times; ++i) out.insert(out.end(), seq.list()->items.begin(), seq.list()->items.end());
  return make_list(std::move(out));
}

Value arithmetic(const std::string& op, const Value& a, const Value& b) {
  if (a.is_undefined()) fail_undefined(std::get<Undefined>(a.data));
  if (b.is_undefined()) fail_undefined(std::get<Undefined>(b.data));
  const bool numbers = a.is_number() && b.is_number();
  const bool floats = numbers && (a.is_float() || b.is_float());
  if (op == "+") {
    if (numbers) return floats ? Value(a.as_double() + b.as_double()) : Value(a.as_int() + b.as_int());
    if (a.is_string() && b.is_string()) return Value(a.str() + b.str());
    if (a.is_list() && b.is_list()) {
      std::vector<Value> items = a.list()->items;
      items.insert(items.end(), b.list()->items.begin(), b.list()->items.end());
      return make_list(std::move(items), a.list()->is_tuple);
    }
  } else if (op == "-") {
    if (numbers) return floats ? Value(a.as_double() - b.as_double()) : Value(a.as_int() - b.as_int());
  } else if (op == "*") {
    if (numbers) return floats ? Value(a.as_double() * b.as_double()) : Value(a.as_int() * b.as_int());
    if ((a.is_string() || a.is_list()) && (b.is_int() || b.is_bool())) return repeat(a, b.as_int());
    if ((b.is_string() || b.is_list()) && (a.is_int() || a.is_bool())) return repeat(b, a.as_int());
  } else if (op == "/" || op == "//" || op == "%") {
    if (op == "%" && a.is_string()) return Value(percent_format(a.str(), b));
    if (numbers) {
      if (b.as_double() == 0.0) fail_runtime("ZeroDivisionError", "division by zero");
      if (op == "/") return Value(a.as_double() / b.as_double());
      if (floats) {
        double q = std::floor(a.as_double() / b.as_double());
        return op == "//" ? Value(q) : Value(a.as_double() - q * b.as_double());
      }
      int64_t q = floor_div(a.as_int(), b.as_int());
      return op == "//" ? Value(q) : Value(a.as_int() - q * b.as_int());
    }
  } else if (op == "**") {
    if (numbers) {
      if (!floats && b.as_int() >= 0) return Value(int_pow(a.as_int(), b.as_int()));
      return Value(std::pow(a.as_double(), b.as_double()));
    }
  }
  unsupported_operands(op, a, b);
}

bool compare(const std::string& op, const Value& a, const Value& b) {
  if (op == "==") return equals(a, b);
  if (op == "!=") return !equals(a, b);
  if (op == "in") return contains(b, a);
  if (op == "not in") return !contains(b, a);
  if (a.is_undefined()) fail_undefined(std::get<Undefined>(a.data));
  if (b.is_undefined()) fail_undefined(std::get<Undefined>(b.data));
  if (op == "<") return less_than(a, b);
  if (op == ">") return less_than(b, a);
  if (op == "<=") return !less_than(b, a);
  return !less_than(a, b);  // ">="
}

class Interpreter {
 public:
  Interpreter(const Value& context, const RenderOptions& options) : options_(options) {
    auto globals = std::make_shared<Scope>();
    install_globals(globals->vars);
    scope_ = std::make_shared<Scope>();
    scope_->parent = globals;
    if (context.is_dict()) scope_->vars = *context.dict();
  }

  std::string run(const Body& program) {
    std::string out;
    try {
      if (exec(program, out) != Flow::Normal) fail_runtime("TemplateSyntaxError", "break or continue outside a loop");
    } catch (const TemplateError& e) {
      if (e.kind() != TemplateError::Kind::Runtime) throw;
      throw TemplateError(e.kind(), std::string(e.what()) + " (line " + std::to_string(line_) + ")");
    }
    return out;
  }

 private:
  enum class Flow { Normal, Break, Continue };

  // ---- statements ----

  Flow exec(const Body& body, std::string& out) {
    for (const auto& stmt : body) {
      Flow flow = exec(*stmt, out);
      if (flow != Flow::Normal) return flow;
    }
    return Flow::Normal;
  }

  Flow exec(const Stmt& stmt, std::string& out) {
    line_ = stmt.line;
    return std::visit([&](const auto& node) { return exec_node(node, out); }, stmt.node);
  }

  Flow exec_node(const TextStmt& s, std::string& out) {
    out += s.text;
    return Flow::Normal;
  }

  Flow exec_node(const OutputStmt& s, std::string& out) {
    out += to_str(eval(*s.expr));
    return Flow::Normal;
  }

  Flow exec_node(const IfStmt& s, std::string& out) {
    for (const auto& [condition, body] : s.branches) {
      if (truthy(eval(*condition))) return exec(body, out);
    }
    return exec(s.else_body, out);
  }

  Flow exec_node(const ForStmt& s, std::string& out) {
    std::vector<Value> items = iterate(eval(*s.iterable));
    if (s.filter) {
      std::vector<Value> kept;
      for (Value& item : items) {
        ScopeGuard guard(*this);
        assign(s.target, item);
        if (truthy(eval(*s.filter))) kept.push_back(std::move(item));
      }
      items = std::move(kept);
    }
    const size_t n = items.size();
    for (size_t i = 0; i < n; ++i) {
      ScopeGuard guard(*this);
      assign(s.target, items[i]);
      scope_->vars.set("loop", loop_object(items, i));
      Flow flow = exec(s.body, out);
      if (flow == Flow::Break) break;
    }
    if (n == 0) return exec(s.else_body, out);
    return Flow::Normal;
  }

  Flow exec_node(const SetStmt& s, std::string&) {
    assign(s.target, eval(*s.value));
    return Flow::Normal;
  }

  Flow exec_node(const SetBlockStmt& s, std::string&) {
    std::string captured;
    exec(s.body, captured);
    Value value(std::move(captured));
    for (const auto& filter : s.filters) value = apply_filter_expr(std::get<FilterExpr>(filter->node), value);
    scope_->vars.set(s.name, std::move(value));
    return Flow::Normal;
  }

  Flow exec_node(const MacroStmt& s, std::string&) {
    scope_->vars.set(s.name, macro_value(s));
    return Flow::Normal;
  }

  Flow exec_node(const CallBlockStmt& s, std::string& out) {
    const auto& call = std::get<CallExpr>(s.call->node);
    Value callee = eval(*call.callee);
    CallArgs args = eval_args(call.args);
    args.keyword.emplace_back("caller", macro_value(s.caller));
    out += to_str(invoke(callee, args));
    return Flow::Normal;
  }

  Flow exec_node(const FilterBlockStmt& s, std::string& out) {
    std::string captured;
    exec(s.body, captured);
    Value value(std::move(captured));
    for (const auto& filter : s.filters) value = apply_filter_expr(std::get<FilterExpr>(filter->node), value);
    out += to_str(value);
    return Flow::Normal;
  }

  Flow exec_node(const BreakStmt&, std::string&) { return Flow::Break; }
  Flow exec_node(const ContinueStmt&, std::string&) { return Flow::Continue; }

  // A fresh child scope for the lifetime of the guard (one loop iteration).
  struct ScopeGuard {
    explicit ScopeGuard(Interpreter& in) : interp(in), saved(in.scope_) {
      auto child = std::make_shared<Scope>();
      child->parent = saved;
      interp.scope_ = std::move(child);
    }
    ~ScopeGuard() { interp.scope_ = saved; }
    Interpreter& interp;
    std::shared_ptr<Scope> saved;
  };

  Value loop_object(const std::vector<Value>& items, size_t i) {
    const auto n = static_cast<int64_t>(items.size());
    const auto index = static_cast<int64_t>(i);
    DictObject loop;
    loop.set("index", Value(index + 1));
    loop.set("index0", Value(index));
    loop.set("revindex", Value(n - index));
    loop.set("revindex0", Value(n - index - 1));
    loop.set("first", Value(i == 0));
    loop.set("last", Value(index == n - 1));
    loop.set("length", Value(n));
    loop.set("depth", Value(int64_t{1}));
    loop.set("depth0", Value(int64_t{0}));
    if (i > 0) loop.set("previtem", items[i - 1]);
    if (index < n - 1) loop.set("nextitem", items[i + 1]);
    loop.set("cycle", make_callable("cycle", [i](CallArgs& args) {
               if (args.positional.empty()) fail_runtime("TypeError", "no items for cycling given");
               return args.positional[i % args.positional.size()];
             }));
    return make_dict(std::move(loop));
  }

  Value* find_variable(const std::string& name) {
    for (Scope* s = scope_.get(); s; s = s->parent.get()) {
      if (Value* v = s->vars.find(name)) return v;
    }
    return nullptr;
  }

  void assign(const Target& target, Value value) {
    if (!target.attribute.empty()) {
      Value* ns = find_variable(target.names[0]);
      if (!ns || !ns->is_namespace()) {
        fail_runtime("TemplateRuntimeError", "cannot assign attribute on non-namespace object");
      }
      ns->ns()->attributes.set(target.attribute, std::move(value));
      return;
    }
    if (!target.is_tuple) {
      scope_->vars.set(target.names[0], std::move(value));
      return;
    }
    std::vector<Value> parts = iterate(value);
    if (parts.size() != target.names.size()) {
      fail_runtime("ValueError", "cannot unpack " + std::to_string(parts.size()) + " values into " +
                                     std::to_string(target.names.size()) + " names");
    }
    for (size_t i = 0; i < parts.size(); ++i) scope_->vars.set(target.names[i], std::move(parts[i]));
  }

  // ---- macros and calls ----

  // The macro usually lives in the very scope it closes over, so it holds that scope weakly (a strong reference
  // would be a cycle that never frees); the interpreter keeps such scopes alive until the render ends.
  Value macro_value(const MacroStmt& macro) {
    macro_scopes_.push_back(scope_);
    std::weak_ptr<Scope> closure = scope_;
    return make_callable(macro.name, [this, &macro, closure](CallArgs& args) {
      return call_macro(macro, closure.lock(), args);
    });
  }

  Value call_macro(const MacroStmt& macro, const std::shared_ptr<Scope>& closure, CallArgs& args) {
    if (depth_ >= kMaxCallDepth) fail_runtime("RecursionError", "macro calls nested too deeply in '" + macro.name + "'");
    auto frame = std::make_shared<Scope>();
    frame->parent = closure;
    std::shared_ptr<Scope> saved = scope_;
    scope_ = frame;
    struct Restore {
      Interpreter& in;
      std::shared_ptr<Scope> saved;
      int line;
      ~Restore() {
        in.scope_ = saved;
        --in.depth_;
        in.line_ = line;
      }
    } restore{*this, saved, line_};
    ++depth_;

    for (size_t i = 0; i < macro.params.size(); ++i) {
      const auto& [name, default_value] = macro.params[i];
      if (const Value* given = args.get(i, name)) {
        frame->vars.set(name, *given);
      } else if (default_value) {
        frame->vars.set(name, eval(*default_value));
      } else {
        frame->vars.set(name, Value(Undefined{"'" + name + "' is undefined"}));
      }
    }
    std::vector<Value> varargs;
    for (size_t i = macro.params.size(); i < args.positional.size(); ++i) varargs.push_back(args.positional[i]);
    DictObject kwargs;
    for (const auto& [name, value] : args.keyword) {
      const std::string& key = name;  // a structured binding cannot be captured before clang 16 (the fuzz build)
      bool is_param = std::any_of(macro.params.begin(), macro.params.end(), [&](const auto& p) { return p.first == key; });
      if (name == "caller") {
        frame->vars.set("caller", value);
      } else if (!is_param) {
        kwargs.set(name, value);
      }
    }
    frame->vars.set("varargs", make_list(std::move(varargs)));
    frame->vars.set("kwargs", make_dict(std::move(kwargs)));

    std::string out;
    if (exec(macro.body, out) != Flow::Normal) fail_runtime("TemplateSyntaxError", "break or continue outside a loop");
    return Value(std::move(out));
  }

  Value invoke(const Value& callee, CallArgs& args) {
    if (callee.is_undefined()) fail_undefined(std::get<Undefined>(callee.data));
    if (!callee.is_callable()) fail_runtime("TypeError", "'" + type_name(callee) + "' object is not callable");
    return callee.callable()->call(args);
  }

  CallArgs eval_args(const CallArgExprs& exprs) {
    CallArgs args;
    for (const auto& e : exprs.positional) args.positional.push_back(eval(*e));
    for (const auto& [name, e] : exprs.keyword) args.keyword.emplace_back(name, eval(*e));
    return args;
  }

  Value apply_filter_expr(const FilterExpr& f, const Value& input) {
    CallArgs args = eval_args(f.args);
    return apply_filter(f.name, input, args);
  }

  // ---- expressions ----

  Value eval(const Expr& e) {
    return std::visit([&](const auto& node) { return eval_node(node); }, e.node);
  }

  Value eval_node(const Literal& n) { return n.value; }

  Value eval_node(const Name& n) {
    if (const Value* v = find_variable(n.name)) return *v;
    return Value(Undefined{"'" + n.name + "' is undefined"});
  }

  Value eval_node(const ListLiteral& n) {
    std::vector<Value> items;
    items.reserve(n.items.size());
    for (const auto& item : n.items) items.push_back(eval(*item));
    return make_list(std::move(items), n.is_tuple);
  }

  Value eval_node(const DictLiteral& n) {
    DictObject dict;
    for (const auto& [k, v] : n.entries) {
      Value key = eval(*k);
      if (!key.is_string()) fail_runtime("TypeError", "only string dict keys are supported, got " + type_name(key));
      dict.set(key.str(), eval(*v));
    }
    return make_dict(std::move(dict));
  }

  Value eval_node(const GetAttr& n) {
    Value object = eval(*n.object);
    if (object.is_undefined()) fail_undefined(std::get<Undefined>(object.data));
    return get_attribute(object, n.attribute);
  }

  Value eval_node(const GetItem& n) {
    Value object = eval(*n.object);
    if (object.is_undefined()) fail_undefined(std::get<Undefined>(object.data));
    return get_item(object, eval(*n.key));
  }

  Value eval_node(const Slice& n) {
    Value object = eval(*n.object);
    if (object.is_undefined()) fail_undefined(std::get<Undefined>(object.data));
    auto bound = [&](const ExprPtr& p) { return p ? eval(*p) : Value(None{}); };
    return slice(object, bound(n.start), bound(n.stop), bound(n.step));
  }

  Value eval_node(const CallExpr& n) {
    Value callee = eval(*n.callee);
    CallArgs args = eval_args(n.args);
    return invoke(callee, args);
  }

  Value eval_node(const FilterExpr& n) { return apply_filter_expr(n, eval(*n.input)); }

  Value eval_node(const TestExpr& n) {
    Value input = eval(*n.input);
    CallArgs args = eval_args(n.args);
    return Value(apply_test(n.name, input, args) != n.negated);
  }

  Value eval_node(const Unary& n) {
    Value v = eval(*n.operand);
    if (n.op == "not") return Value(!truthy(v));
    if (v.is_undefined()) fail_undefined(std::get<Undefined>(v.data));
    if (!v.is_number()) fail_runtime("TypeError", "bad operand type for unary " + n.op + ": '" + type_name(v) + "'");
    if (n.op == "+") return v.is_float() ? v : Value(v.as_int());
    return v.is_float() ? Value(-v.as_double()) : Value(-v.as_int());
  }

  Value eval_node(const Binary& n) {
    Value left = eval(*n.left);
    if (n.op == "and") return truthy(left) ? eval(*n.right) : left;
    if (n.op == "or") return truthy(left) ? left : eval(*n.right);
    Value right = eval(*n.right);
    if (n.op == "~") return Value(to_str(left) + to_str(right));
    return arithmetic(n.op, left, right);
  }

  Value eval_node(const Compare& n) {
    Value left = eval(*n.first);
    for (const auto& [op, expr] : n.rest) {
      Value right = eval(*expr);
      if (!compare(op, left, right)) return Value(false);
      left = std::move(right);
    }
    return Value(true);
  }

  Value eval_node(const Conditional& n) {
    if (truthy(eval(*n.condition))) return eval(*n.then_value);
    if (n.else_value) return eval(*n.else_value);
    return Value(Undefined{"the inline if-expression evaluated to false and no else section was defined"});
  }

  // ---- globals ----

  void install_globals(DictObject& g) {
    g.set("range", make_callable("range", [](CallArgs& args) {
            std::vector<int64_t> bounds;
            for (const Value& v : args.positional) {
              if (!v.is_int() && !v.is_bool()) fail_runtime("TypeError", "range() needs integers, got " + type_name(v));
              bounds.push_back(v.as_int());
            }
            if (bounds.empty() || bounds.size() > 3) fail_runtime("TypeError", "range expected 1 to 3 arguments");
            int64_t start = bounds.size() == 1 ? 0 : bounds[0];
            int64_t stop = bounds.size() == 1 ? bounds[0] : bounds[1];
            int64_t step = bounds.size() == 3 ? bounds[2] : 1;
            if (step == 0) fail_runtime("ValueError", "range() arg 3 must not be zero");
            std::vector<Value> out;
            for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
              if (out.size() >= 1'000'000) fail_runtime("OverflowError", "range too big");
              out.emplace_back(i);
            }
            return make_list(std::move(out));
          }));
    g.set("namespace", make_callable("namespace", [](CallArgs& args) {
            auto ns = std::make_shared<NamespaceObject>();
            for (const Value& v : args.positional) {
              if (!v.is_dict()) fail_runtime("TypeError", "namespace() takes a dict or keyword arguments");
              for (const auto& [k, val] : v.dict()->entries) ns->attributes.set(k, val);
            }
            for (const auto& [k, v] : args.keyword) ns->attributes.set(k, v);
            return Value(std::move(ns));
          }));
    g.set("dict", make_callable("dict", [](CallArgs& args) {
            DictObject d;
            for (const Value& v : args.positional) {
              if (!v.is_dict()) fail_runtime("TypeError", "dict() positional argument must be a dict");
              for (const auto& [k, val] : v.dict()->entries) d.set(k, val);
            }
            for (const auto& [k, v] : args.keyword) d.set(k, v);
            return make_dict(std::move(d));
          }));
    g.set("raise_exception", make_callable("raise_exception", [](CallArgs& args) -> Value {
            const Value* message = args.get(0, "message");
            throw TemplateError(TemplateError::Kind::Raised, message ? to_str(*message) : std::string());
          }));
    g.set("strftime_now", make_callable("strftime_now", [this](CallArgs& args) {
            const Value* format = args.get(0, "format");
            if (!format || !format->is_string()) fail_runtime("TypeError", "strftime_now needs a format string");
            std::tm now{};
            if (options_.now) {
              now = *options_.now;
            } else {
              std::time_t t = std::time(nullptr);
              localtime_r(&t, &now);
            }
            char buf[256];
            size_t n = std::strftime(buf, sizeof buf, format->str().c_str(), &now);
            return Value(std::string(buf, n));
          }));
  }

  const RenderOptions& options_;
  std::shared_ptr<Scope> scope_;
  std::vector<std::shared_ptr<Scope>> macro_scopes_;
  int depth_ = 0;
  int line_ = 0;
};

}  // namespace

std::string interpret(const Body& program, const Value& context, const RenderOptions& options) {
  return Interpreter(context, options).run(program);
}

}  // namespace pensieve::chat
