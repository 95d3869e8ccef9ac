#pragma once
// The parsed form of a template: expression and statement trees. Built once by the parser, then only read,
// so one parsed template can be rendered from many threads at once.
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "chat/value.h"

namespace pensieve::chat {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct CallArgExprs {
  std::vector<ExprPtr> positional;
  std::vector<std::pair<std::string, ExprPtr>> keyword;
};

struct Literal { Value value; };  // immutable scalars only (strings, numbers, booleans, none)
struct Name { std::string name; };
struct ListLiteral { std::vector<ExprPtr> items; bool is_tuple = false; };
struct DictLiteral { std::vector<std::pair<ExprPtr, ExprPtr>> entries; };
struct GetAttr { ExprPtr object; std::string attribute; };
struct GetItem { ExprPtr object; ExprPtr key; };
struct Slice { ExprPtr object; ExprPtr start, stop, step; };  // each bound may be null
struct CallExpr { ExprPtr callee; CallArgExprs args; };
struct FilterExpr { ExprPtr input; std::string name; CallArgExprs args; };  // input null in {% filter %}
struct TestExpr { ExprPtr input; std::string name; CallArgExprs args; bool negated = false; };
struct Unary { std::string op; ExprPtr operand; };  // "-", "+", "not"
struct Binary { std::string op; ExprPtr left, right; };  // arithmetic, "~", "and", "or"
struct Compare { ExprPtr first; std::vector<std::pair<std::string, ExprPtr>> rest; };  // ==, <, in, not in, ...
struct Conditional { ExprPtr condition, then_value, else_value; };  // else_value null -> Undefined

struct Expr {
  std::variant<Literal, Name, ListLiteral, DictLiteral, GetAttr, GetItem, Slice, CallExpr, FilterExpr, TestExpr, Unary,
               Binary, Compare, Conditional>
      node;
  int line = 0;
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

// What a `set` or `for` assigns to: a name, a tuple of names, or a namespace attribute (`ns.x`).
struct Target {
  std::vector<std::string> names;  // several -> tuple unpacking
  std::string attribute;           // non-empty -> names[0].attribute
  bool is_tuple = false;
};

struct TextStmt { std::string text; };
struct OutputStmt { ExprPtr expr; };
struct IfStmt { std::vector<std::pair<ExprPtr, Body>> branches; Body else_body; };
struct ForStmt { Target target; ExprPtr iterable; ExprPtr filter; Body body; Body else_body; };
struct SetStmt { Target target; ExprPtr value; };
struct SetBlockStmt { std::string name; Body body; std::vector<ExprPtr> filters; };  // filters: FilterExpr, input null
struct MacroStmt {
  std::string name;
  std::vector<std::pair<std::string, ExprPtr>> params;  // default may be null
  Body body;
};
struct CallBlockStmt { MacroStmt caller; ExprPtr call; };  // caller.name == "caller"
struct FilterBlockStmt { std::vector<ExprPtr> filters; Body body; };
struct BreakStmt {};
struct ContinueStmt {};

struct Stmt {
  std::variant<TextStmt, OutputStmt, IfStmt, ForStmt, SetStmt, SetBlockStmt, MacroStmt, CallBlockStmt, FilterBlockStmt,
               BreakStmt, ContinueStmt>
      node;
  int line = 0;
};

}  // namespace pensieve::chat
