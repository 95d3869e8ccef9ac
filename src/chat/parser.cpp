#include "chat/parser.h"

#include <algorithm>
#include <initializer_list>

#include "chat/template_error.h"

namespace pensieve::chat {

namespace {

template <typename Node>
ExprPtr make_expr(Node node, int line) {
  auto e = std::make_unique<Expr>();
  e->node = std::move(node);
  e->line = line;
  return e;
}

template <typename Node>
StmtPtr make_stmt(Node node, int line) {
  auto s = std::make_unique<Stmt>();
  s->node = std::move(node);
  s->line = line;
  return s;
}

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  Body parse_all() {
    Body body = parse_body({});
    if (current().type != TokenType::End) fail("unexpected '" + peek_block_name() + "'");
    return body;
  }

 private:
  // ---- token stream ----
  const Token& current() const { return tokens_[pos_]; }
  const Token& lookahead(size_t n = 1) const { return tokens_[std::min(pos_ + n, tokens_.size() - 1)]; }
  Token next() { return tokens_[pos_ < tokens_.size() - 1 ? pos_++ : pos_]; }

  bool at_operator(std::string_view op) const {
    return current().type == TokenType::Operator && current().text == op;
  }
  bool at_name(std::string_view name) const { return current().type == TokenType::Name && current().text == name; }
  bool skip_operator(std::string_view op) {
    if (!at_operator(op)) return false;
    ++pos_;
    return true;
  }
  bool skip_name(std::string_view name) {
    if (!at_name(name)) return false;
    ++pos_;
    return true;
  }
  void expect_operator(std::string_view op) {
    if (!skip_operator(op)) fail("expected '" + std::string(op) + "', got " + describe(current()));
  }
  std::string expect_name() {
    if (current().type != TokenType::Name) fail("expected a name, got " + describe(current()));
    return next().text;
  }
  void expect(TokenType type, const char* what) {
    if (current().type != type) fail(std::string("expected ") + what + ", got " + describe(current()));
    ++pos_;
  }

  static std::string describe(const Token& t) {
    switch (t.type) {
      case TokenType::Text: return "text";
      case TokenType::VariableBegin: return "'{{'";
      case TokenType::VariableEnd: return "'}}'";
      case TokenType::BlockBegin: return "'{%'";
      case TokenType::BlockEnd: return "'%}'";
      case TokenType::End: return "end of template";
      case TokenType::String: return "string";
      default: return "'" + t.text + "'";
    }
  }

  std::string peek_block_name() const {
    if (current().type == TokenType::BlockBegin && lookahead().type == TokenType::Name) return lookahead().text;
    return describe(current());
  }

  [[noreturn]] void fail(const std::string& message) const {
    throw TemplateError(TemplateError::Kind::Syntax,
                        "TemplateSyntaxError: " + message + " (line " + std::to_string(current().line) + ")");
  }

  // ---- statements ----

  // Parses until a block tag named in `ends` (left unconsumed) or the end of input.
  Body parse_body(std::initializer_list<std::string_view> ends) {
    Body body;
    for (;;) {
      const Token& t = current();
      if (t.type == TokenType::End) {
        if (ends.size() != 0) fail("unexpected end of template, expected '" + std::string(*ends.begin()) + "'");
        return body;
      }
      if (t.type == TokenType::Text) {
        body.push_back(make_stmt(TextStmt{t.text}, t.line));
        ++pos_;
      } else if (t.type == TokenType::VariableBegin) {
        int line = t.line;
        ++pos_;
        ExprPtr e = parse_tuple(true);
        expect(TokenType::VariableEnd, "'}}'");
        body.push_back(make_stmt(OutputStmt{std::move(e)}, line));
      } else if (t.type == TokenType::BlockBegin) {
        std::string name = peek_block_name();
        if (std::find(ends.begin(), ends.end(), name) != ends.end()) return body;
        body.push_back(parse_statement());
      } else {
        fail("unexpected " + describe(t));
      }
    }
  }

  // Consumes `{% name [label] %}` that closes a block.
  void end_block(std::string_view name) {
    expect(TokenType::BlockBegin, "'{%'");
    if (!skip_name(name)) fail("expected '" + std::string(name) + "'");
    if (current().type == TokenType::Name) ++pos_;  // {% endmacro name %}
    expect(TokenType::BlockEnd, "'%}'");
  }

  // Parsing recurses once per level of nesting (blocks in blocks, parentheses, unary operators), and so does
  // rendering the tree: a bound keeps a hostile or broken template from overflowing the stack.
  static constexpr int kMaxNesting = 200;
  struct Nesting {
    explicit Nesting(Parser& p) : parser(p) {
      if (++parser.nesting_ > kMaxNesting) parser.fail("template nested more than " + std::to_string(kMaxNesting) + " levels deep");
    }
    ~Nesting() { --parser.nesting_; }
    Parser& parser;
  };

  StmtPtr parse_statement() {
    const Nesting nesting(*this);
    expect(TokenType::BlockBegin, "'{%'");
    int line = current().line;
    std::string keyword = expect_name();
    if (keyword == "if") return parse_if(line);
    if (keyword == "for") return parse_for(line);
    if (keyword == "set") return parse_set(line);
    if (keyword == "macro") return parse_macro(line);
    if (keyword == "call") return parse_call_block(line);
    if (keyword == "filter") return parse_filter_block(line);
    if (keyword == "break" || keyword == "continue") {
      expect(TokenType::BlockEnd, "'%}'");
      if (keyword == "break") return make_stmt(BreakStmt{}, line);
      return make_stmt(ContinueStmt{}, line);
    }
    --pos_;
    fail("unknown or misplaced tag '" + keyword + "'");
  }

  StmtPtr parse_if(int line) {
    IfStmt stmt;
    ExprPtr condition = parse_tuple(true);
    expect(TokenType::BlockEnd, "'%}'");
    for (;;) {
      Body body = parse_body({"elif", "else", "endif"});
      stmt.branches.emplace_back(std::move(condition), std::move(body));
      expect(TokenType::BlockBegin, "'{%'");
      std::string tag = expect_name();
      if (tag == "elif") {
        condition = parse_tuple(true);
        expect(TokenType::BlockEnd, "'%}'");
        continue;
      }
      expect(TokenType::BlockEnd, "'%}'");
      if (tag == "else") {
        stmt.else_body = parse_body({"endif"});
        end_block("endif");
      }
      break;
    }
    return make_stmt(std::move(stmt), line);
  }

  Target parse_target(bool allow_attribute) {
    Target target;
    bool parens = skip_operator("(");
    target.names.push_back(expect_name());
    if (allow_attribute && !parens && skip_operator(".")) {
      target.attribute = expect_name();
      return target;
    }
    while (skip_operator(",")) {
      target.is_tuple = true;
      if (current().type != TokenType::Name) break;
      target.names.push_back(expect_name());
    }
    if (parens) expect_operator(")");
    return target;
  }

  StmtPtr parse_for(int line) {
    ForStmt stmt;
    stmt.target = parse_target(false);
    if (!skip_name("in")) fail("expected 'in' in for loop");
    stmt.iterable = parse_tuple(false);
    if (skip_name("if")) stmt.filter = parse_expression(true);
    if (skip_name("recursive")) fail("recursive for loops are not supported");
    expect(TokenType::BlockEnd, "'%}'");
    stmt.body = parse_body({"endfor", "else"});
    if (peek_block_name() == "else") {
      pos_ += 2;
      expect(TokenType::BlockEnd, "'%}'");
      stmt.else_body = parse_body({"endfor"});
    }
    end_block("endfor");
    return make_stmt(std::move(stmt), line);
  }

  StmtPtr parse_set(int line) {
    Target target = parse_target(true);
    if (skip_operator("=")) {
      ExprPtr value = parse_tuple(true);
      expect(TokenType::BlockEnd, "'%}'");
      return make_stmt(SetStmt{std::move(target), std::move(value)}, line);
    }
    if (target.is_tuple || !target.attribute.empty()) fail("block set needs a single name");
    SetBlockStmt stmt;
    stmt.name = target.names[0];
    while (skip_operator("|")) stmt.filters.push_back(parse_filter(nullptr));
    expect(TokenType::BlockEnd, "'%}'");
    stmt.body = parse_body({"endset"});
    end_block("endset");
    return make_stmt(std::move(stmt), line);
  }

  std::vector<std::pair<std::string, ExprPtr>> parse_params() {
    std::vector<std::pair<std::string, ExprPtr>> params;
    expect_operator("(");
    while (!at_operator(")")) {
      if (!params.empty()) expect_operator(",");
      if (at_operator(")")) break;
      std::string name = expect_name();
      ExprPtr default_value;
      if (skip_operator("=")) default_value = parse_expression(true);
      params.emplace_back(std::move(name), std::move(default_value));
    }
    expect_operator(")");
    return params;
  }

  StmtPtr parse_macro(int line) {
    MacroStmt stmt;
    stmt.name = expect_name();
    stmt.params = parse_params();
    expect(TokenType::BlockEnd, "'%}'");
    stmt.body = parse_body({"endmacro"});
    end_block("endmacro");
    return make_stmt(std::move(stmt), line);
  }

  StmtPtr parse_call_block(int line) {
    CallBlockStmt stmt;
    stmt.caller.name = "caller";
    if (at_operator("(")) stmt.caller.params = parse_params();
    stmt.call = parse_expression(true);
    if (!std::holds_alternative<CallExpr>(stmt.call->node)) fail("expected a call in {% call %}");
    expect(TokenType::BlockEnd, "'%}'");
    stmt.caller.body = parse_body({"endcall"});
    end_block("endcall");
    return make_stmt(std::move(stmt), line);
  }

  StmtPtr parse_filter_block(int line) {
    FilterBlockStmt stmt;
    do {
      stmt.filters.push_back(parse_filter(nullptr));
    } while (skip_operator("|"));
    expect(TokenType::BlockEnd, "'%}'");
    stmt.body = parse_body({"endfilter"});
    end_block("endfilter");
    return make_stmt(std::move(stmt), line);
  }

  // ---- expressions, lowest precedence first ----

  // `a, b` makes a tuple where jinja allows one (output, set values, for iterables, parentheses).
  ExprPtr parse_tuple(bool with_condexpr, bool explicit_parens = false) {
    int line = current().line;
    std::vector<ExprPtr> items;
    bool saw_comma = false;
    for (;;) {
      if (!items.empty()) {
        if (!skip_operator(",")) break;
        saw_comma = true;
      }
      if (current().type == TokenType::BlockEnd || current().type == TokenType::VariableEnd || at_operator(")") ||
          (!items.empty() && (at_name("if") || at_name("recursive")))) {
        break;
      }
      items.push_back(parse_expression(with_condexpr));
    }
    if (!saw_comma && items.size() == 1) return std::move(items[0]);
    if (items.empty() && !explicit_parens) fail("expected an expression, got " + describe(current()));
    return make_expr(ListLiteral{std::move(items), true}, line);
  }

  ExprPtr parse_expression(bool with_condexpr) {
    return with_condexpr ? parse_condexpr() : parse_or();
  }

  ExprPtr parse_condexpr() {
    int line = current().line;
    ExprPtr value = parse_or();
    while (skip_name("if")) {
      ExprPtr condition = parse_or();
      ExprPtr otherwise;
      if (skip_name("else")) otherwise = parse_condexpr();
      value = make_expr(Conditional{std::move(condition), std::move(value), std::move(otherwise)}, line);
    }
    return value;
  }

  ExprPtr parse_or() {
    int line = current().line;
    ExprPtr left = parse_and();
    while (skip_name("or")) left = make_expr(Binary{"or", std::move(left), parse_and()}, line);
    return left;
  }

  ExprPtr parse_and() {
    int line = current().line;
    ExprPtr left = parse_not();
    while (skip_name("and")) left = make_expr(Binary{"and", std::move(left), parse_not()}, line);
    return left;
  }

  ExprPtr parse_not() {
    const Nesting nesting(*this);
    int line = current().line;
    if (skip_name("not")) return make_expr(Unary{"not", parse_not()}, line);
    return parse_compare();
  }

  ExprPtr parse_compare() {
    int line = current().line;
    ExprPtr first = parse_math1();
    Compare cmp;
    for (;;) {
      std::string op;
      if (current().type == TokenType::Operator &&
          (current().text == "==" || current().text == "!=" || current().text == "<" || current().text == "<=" ||
           current().text == ">" || current().text == ">=")) {
        op = next().text;
      } else if (skip_name("in")) {
        op = "in";
      } else if (at_name("not") && lookahead().type == TokenType::Name && lookahead().text == "in") {
        pos_ += 2;
        op = "not in";
      } else {
        break;
      }
      cmp.rest.emplace_back(op, parse_math1());
    }
    if (cmp.rest.empty()) return first;
    cmp.first = std::move(first);
    return make_expr(std::move(cmp), line);
  }

  ExprPtr parse_math1() {
    int line = current().line;
    ExprPtr left = parse_concat();
    while (at_operator("+") || at_operator("-")) {
      std::string op = next().text;
      left = make_expr(Binary{op, std::move(left), parse_concat()}, line);
    }
    return left;
  }

  ExprPtr parse_concat() {
    int line = current().line;
    ExprPtr left = parse_math2();
    while (skip_operator("~")) left = make_expr(Binary{"~", std::move(left), parse_math2()}, line);
    return left;
  }

  ExprPtr parse_math2() {
    int line = current().line;
    ExprPtr left = parse_pow();
    while (at_operator("*") || at_operator("/") || at_operator("//") || at_operator("%")) {
      std::string op = next().text;
      left = make_expr(Binary{op, std::move(left), parse_pow()}, line);
    }
    return left;
  }

  ExprPtr parse_pow() {
    int line = current().line;
    ExprPtr left = parse_unary(true);
    while (skip_operator("**")) left = make_expr(Binary{"**", std::move(left), parse_unary(true)}, line);
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    const Nesting nesting(*this);
    int line = current().line;
    ExprPtr node;
    if (at_operator("-") || at_operator("+")) {
      std::string op = next().text;
      node = make_expr(Unary{op, parse_unary(false)}, line);
    } else {
      node = parse_primary();
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_chain(std::move(node));
    return node;
  }

  ExprPtr parse_primary() {
    const Token& t = current();
    int line = t.line;
    switch (t.type) {
      case TokenType::Name: {
        std::string name = next().text;
        if (name == "true" || name == "True") return make_expr(Literal{Value(true)}, line);
        if (name == "false" || name == "False") return make_expr(Literal{Value(false)}, line);
        if (name == "none" || name == "None") return make_expr(Literal{Value(None{})}, line);
        return make_expr(Name{std::move(name)}, line);
      }
      case TokenType::String: {
        std::string s = next().text;
        while (current().type == TokenType::String) s += next().text;
        return make_expr(Literal{Value(std::move(s))}, line);
      }
      case TokenType::Integer: return make_expr(Literal{Value(next().int_value)}, line);
      case TokenType::Float: return make_expr(Literal{Value(next().float_value)}, line);
      case TokenType::Operator:
        if (skip_operator("(")) {
          ExprPtr inner = parse_tuple(true, true);
          expect_operator(")");
          return inner;
        }
        if (skip_operator("[")) {
          ListLiteral list;
          while (!at_operator("]")) {
            if (!list.items.empty()) expect_operator(",");
            if (at_operator("]")) break;
            list.items.push_back(parse_expression(true));
          }
          expect_operator("]");
          return make_expr(std::move(list), line);
        }
        if (skip_operator("{")) {
          DictLiteral dict;
          while (!at_operator("}")) {
            if (!dict.entries.empty()) expect_operator(",");
            if (at_operator("}")) break;
            ExprPtr key = parse_expression(true);
            expect_operator(":");
            dict.entries.emplace_back(std::move(key), parse_expression(true));
          }
          expect_operator("}");
          return make_expr(std::move(dict), line);
        }
        break;
      default: break;
    }
    fail("unexpected " + describe(t));
  }

  ExprPtr parse_postfix(ExprPtr node) {
    for (;;) {
      int line = current().line;
      if (skip_operator(".")) {
        if (current().type == TokenType::Integer) {
          node = make_expr(GetItem{std::move(node), make_expr(Literal{Value(next().int_value)}, line)}, line);
        } else {
          node = make_expr(GetAttr{std::move(node), expect_name()}, line);
        }
      } else if (skip_operator("[")) {
        node = parse_subscript(std::move(node), line);
      } else if (at_operator("(")) {
        node = make_expr(CallExpr{std::move(node), parse_call_args()}, line);
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr object, int line) {
    ExprPtr start, stop, step;
    if (!at_operator(":")) start = parse_expression(true);
    if (skip_operator("]")) return make_expr(GetItem{std::move(object), std::move(start)}, line);
    expect_operator(":");
    if (!at_operator("]") && !at_operator(":")) stop = parse_expression(true);
    if (skip_operator(":") && !at_operator("]")) step = parse_expression(true);
    expect_operator("]");
    return make_expr(Slice{std::move(object), std::move(start), std::move(stop), std::move(step)}, line);
  }

  CallArgExprs parse_call_args() {
    CallArgExprs args;
    expect_operator("(");
    bool first = true;
    while (!at_operator(")")) {
      if (!first) expect_operator(",");
      first = false;
      if (at_operator(")")) break;
      if (at_operator("*") || at_operator("**")) fail("*args and **kwargs in calls are not supported");
      if (current().type == TokenType::Name && lookahead().type == TokenType::Operator && lookahead().text == "=") {
        std::string name = next().text;
        ++pos_;
        args.keyword.emplace_back(std::move(name), parse_expression(true));
      } else {
        if (!args.keyword.empty()) fail("positional argument after keyword argument");
        args.positional.push_back(parse_expression(true));
      }
    }
    expect_operator(")");
    return args;
  }

  std::string parse_dotted_name() {
    std::string name = expect_name();
    while (skip_operator(".")) name += "." + expect_name();
    return name;
  }

  ExprPtr parse_filter(ExprPtr input) {
    int line = current().line;
    FilterExpr filter;
    filter.input = std::move(input);
    filter.name = parse_dotted_name();
    if (at_operator("(")) filter.args = parse_call_args();
    return make_expr(std::move(filter), line);
  }

  ExprPtr parse_test(ExprPtr input) {
    int line = current().line;
    TestExpr test;
    test.input = std::move(input);
    test.negated = skip_name("not");
    test.name = parse_dotted_name();
    const Token& t = current();
    if (at_operator("(")) {
      test.args = parse_call_args();
    } else if ((t.type == TokenType::Name || t.type == TokenType::String || t.type == TokenType::Integer ||
                t.type == TokenType::Float || at_operator("[") || at_operator("{")) &&
               !(t.type == TokenType::Name && (t.text == "else" || t.text == "or" || t.text == "and" ||
                                               t.text == "is" || t.text == "if"))) {
      test.args.positional.push_back(parse_postfix(parse_primary()));
    }
    return make_expr(std::move(test), line);
  }

  ExprPtr parse_filter_chain(ExprPtr node) {
    for (;;) {
      if (skip_operator("|")) {
        node = parse_filter(std::move(node));
      } else if (skip_name("is")) {
        node = parse_test(std::move(node));
      } else if (at_operator("(")) {
        int line = current().line;
        node = make_expr(CallExpr{std::move(node), parse_call_args()}, line);
      } else {
        return node;
      }
    }
  }

  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int nesting_ = 0;
};

}  // namespace

Body parse_template(std::string_view source, const LexerOptions& options) {
  return Parser(tokenize(source, options)).parse_all();
}

}  // namespace pensieve::chat
