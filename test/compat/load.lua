-- load.lua: load, chunk names, modes, string.dump, loadfile/dofile, require.
local T = require "harness"

local function loaderr(src, name, mode, env) return select(2, load(src, name, mode, env)) end

T.section "load strings"
do
  local f = load("return 1 + 1")
  T.eq(f(), 2, "load simple chunk")
  T.eq(type(load("")), "function", "load empty chunk")
  T.eq(select("#", load("")()), 0, "empty chunk returns nothing")
  T.eq(load("local a, b = ...; return b, a")(1, 2), 2, "chunk receives arguments")
  T.eq(load("x_from_load = 5")(), nil, "chunk assigning global")
  T.eq(x_from_load, 5, "global set by loaded chunk")
  x_from_load = nil
  T.eq(load("#!shebang is not skipped by load\nreturn 1"), nil, "load does not skip shebang line")
  T.eq(load("\27Lua junk", "=bin", "t"), nil, "binary signature rejected in text mode")
  T.eq(loaderr("\27Lua junk", "=bin", "t"), "attempt to load a binary chunk (mode is 't')", "mode t message")
  T.eq(loaderr("return 1", "=txt", "b"), "attempt to load a text chunk (mode is 'b')", "mode b message")
  T.eq(loaderr("return 1", "=txt", "x"), "attempt to load a text chunk (mode is 'x')", "unknown mode message")
  T.eq(load("return 1", "=txt", "bt")(), 1, "mode bt accepts text")
  T.err("bad argument #1 to 'load' (function expected, got nil)", function () return load(nil) end, "load nil")
end

T.section "readers"
do
  local parts = {"return ", "'he", "llo'"}
  local i = 0
  local f = load(function () i = i + 1; return parts[i] end)
  T.eq(f(), "hello", "reader function pieces")
  local calls = 0
  load(function () calls = calls + 1; return nil end)
  T.eq(calls, 1, "reader stops at nil")
  local j = 0
  local g = load(function () j = j + 1; if j == 1 then return "return 7" end return "" end)
  T.eq(g(), 7, "reader stops at empty string")
  -- called through pcall so that no outer message handler (lua.c adds a
  -- traceback) sees the error raised while the reader runs
  local pok, ok, msg = pcall(load, function () return {} end)
  T.eq(ok, nil, "reader returning table fails")
  T.eq(msg, "reader function must return a string", "reader returning table message")
  local _, e1, e2 = pcall(load, function () error("reader broke", 0) end)
  T.eq(e1, nil, "error in reader returns nil")
  T.eq(e2, "reader broke", "error in reader message")
  local _, e3, e4 = pcall(load, function () error({}) end)
  T.eq(type(e4), "table", "error object from reader returned as is")
  local one = 0
  local src = "return 'x'"
  local h = load(function () one = one + 1; return src:sub(one, one) ~= "" and src:sub(one, one) or nil end)
  T.eq(h(), "x", "reader one character at a time")
  T.eq(select(2, load(function () return nil end, "=empty")) , nil, "empty reader gives valid chunk")
end

T.section "chunknames"
do
  T.eq(loaderr("x = "), [[[string "x = "]:1: unexpected symbol near <eof>]], "default chunkname from source")
  T.eq(loaderr("x = ", "=custom"), "custom:1: unexpected symbol near <eof>", "= chunkname used verbatim")
  T.eq(loaderr("x = ", "@file.lua"), "file.lua:1: unexpected symbol near <eof>", "@ chunkname as file")
  T.eq(loaderr("x = ", "plain"), [[[string "plain"]:1: unexpected symbol near <eof>]], "plain chunkname")
  T.eq(loaderr("\n\nx = = 1"), [[[string "..."]:3: unexpected symbol near '=']], "chunkname of source starting with newline")
  T.eq(loaderr("local a = 1\nx = = 1"), [[[string "local a = 1..."]:2: unexpected symbol near '=']],
       "multi line source chunkname truncated at newline")
  T.eq(loaderr(string.rep("a", 70) .. " = = 1"),
       [[[string "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa..."]:1: unexpected symbol near '=']],
       "long source chunkname truncated")
  T.eq(debug.getinfo(load("return 1", "=named"), "S").source, "=named", "source recorded")
  T.eq(debug.getinfo(load("return 1", "=named"), "S").short_src, "named", "short_src")
  local _, e = pcall(load("error('at line 2')\n", "=chunk"))
  T.eq(e, "chunk:1: at line 2", "runtime error uses chunkname")
end

T.section "syntax errors"
do
  local function se(src) return loaderr(src, "=s") end
  T.eq(se("x = "), "s:1: unexpected symbol near <eof>", "missing expression")
  T.eq(se("x = = 1"), "s:1: unexpected symbol near '='", "double equals")
  T.eq(se("if x then"), "s:1: 'end' expected near <eof>", "missing end")
  T.eq(se("if x then\n\nelse"), "s:3: 'end' expected (to close 'if' at line 1) near <eof>", "missing end multiline")
  T.eq(se("f("), "s:1: unexpected symbol near <eof>", "unclosed call")
  T.eq(se("local 1"), "s:1: <name> expected near '1'", "local with number")
  T.eq(se("x = }"), "s:1: unexpected symbol near '}'", "unexpected brace")
  T.eq(se("for i = 1 do end"), "s:1: ',' expected near 'do'", "numeric for missing comma")
  T.eq(se("return return"), "s:1: unexpected symbol near 'return'", "return return")
  T.eq(se("return 1 x = 2"), "s:1: <eof> expected near 'x'", "statement after return")
  T.eq(se("x = 1e"), "s:1: malformed number near '1e'", "malformed exponent")
  T.eq(se("local function end"), "s:1: <name> expected near 'end'", "local function without name")
  T.eq(se("x = {1,2"), "s:1: '}' expected near <eof>", "unclosed table constructor")
  T.eq(se("goto = 1"), "s:1: <name> expected near '='", "goto is reserved")
  T.eq(se("x = '\\xZZ'"), "s:1: hexadecimal digit expected near ''\\xZ'", "bad hex escape")
  T.eq(se("x = @"), "s:1: unexpected symbol near '@'", "invalid character")
  T.eq(se("local a <const> = 1; local function f() a = 2 end"), "s:1: attempt to assign to const variable 'a'",
       "assign to const upvalue")
  T.eq(se("local x <close> = nil; local y <close> = nil"), nil, "two close variables in one block compile")
  T.eq(se("x = 1 + + 1"), "s:1: unexpected symbol near '+'", "double operator")
  T.eq(se("x = 3x"), "s:1: malformed number near '3x'", "malformed number")
  T.eq(se("local x <foo> = 1"), "s:1: unknown attribute 'foo'", "unknown attribute")
  T.eq(se("local x <const> = 1; x = 2"), "s:1: attempt to assign to const variable 'x'", "assign to const")
  T.eq(se("a.b:c = 1"), "s:1: function arguments expected near '='", "method in assignment")
  T.eq(se("x = 'abc"), "s:1: unfinished string near <eof>", "unfinished string at eof")
  T.eq(se("x = 'abc\ny'"), "s:1: unfinished string near ''abc'", "unfinished string at newline")
  T.eq(se("--[[ unfinished"), "s:1: unfinished long comment (starting at line 1) near <eof>", "unfinished comment")
  T.eq(se("x = ~= 1"), "s:1: unexpected symbol near '~='", "unexpected operator")
  T.eq(se("(f)"), "s:1: syntax error near <eof>", "expression statement")
  T.eq(se("f() = 1"), "s:1: syntax error near '='", "assign to call")
  local _, _, deep = pcall(load, "return " .. string.rep("(", 300) .. "1" .. string.rep(")", 300), "=s")
  T.eq(deep, "C stack overflow", "deep nesting overflows the parser C stack")
  T.eq(load("return " .. string.rep("(", 150) .. "1" .. string.rep(")", 150))(), 1, "nesting 150 deep compiles")
end

T.section "env"
do
  local env = {y = 10}
  local f = load("x = y * 2; return x", "=env", "t", env)
  T.eq(f(), 20, "env supplies globals")
  T.eq(env.x, 20, "globals written to env")
  T.eq(rawget(_G, "x"), nil, "real globals untouched")
  local g = load("return print", "=nil env", "t", nil)
  T.err("attempt to index a nil value (upvalue '_ENV')", g, "explicit nil env is used as _ENV")
  local h = load("return _ENV", "=e", "t", env)
  T.eq(h(), env, "_ENV is the env table")
  local ok, e = pcall(load("return undefinedglobal.x", "=e", "t", {}))
  T.eq(e, "e:1: attempt to index a nil value (global 'undefinedglobal')", "error in custom env")
  local fenv = load("local _ENV = {z = 3}; return z")
  T.eq(fenv(), 3, "local _ENV")
  local function getenvof(fn) return select(2, debug.getupvalue(fn, 1)) end
  T.eq(getenvof(load("return a")), _G, "default env is _G")
  local withnum = load("return x", "=n", "t", 5)
  T.err("attempt to index a number value (upvalue '_ENV')", withnum, "non table env")
end

T.section "dump"
do
  local function adder(a, b) local c = a + b; return c * 2 end
  local bin = string.dump(adder)
  T.eq(bin:sub(1, 4), "\27Lua", "dump signature")
  T.eq(bin:byte(5), 0x54, "dump version byte")
  local back = load(bin, "=bin", "b")
  T.eq(back(3, 4), 14, "dump round trip")
  T.eq(loaderr(bin, "=bin", "t"), "attempt to load a binary chunk (mode is 't')", "binary rejected in text mode")
  local stripped = string.dump(adder, true)
  T.ok(#stripped < #bin, "stripped dump is smaller")
  T.eq(load(stripped)(1, 1), 4, "stripped dump runs")
  local function failing() local t = nil; return t.x end
  local _, e1 = pcall(load(string.dump(failing)))
  T.ok(e1:find("attempt to index a nil value (local 't')", 1, true) ~= nil, "unstripped keeps local names")
  local _, e2 = pcall(load(string.dump(failing, true)))
  T.eq(e2, "?:-1: attempt to index a nil value", "stripped dump loses names and lines")
  T.err("unable to dump given function", function () return string.dump(print) end, "dump C function")
  local up = 5
  local function useup() return up end
  local d = load(string.dump(useup))
  T.eq(d(), _G, "load sets first upvalue of a binary chunk to the globals")
  debug.setupvalue(d, 1, 9)
  T.eq(d(), 9, "setupvalue on loaded dump")
  T.eq(loaderr(bin:sub(1, 10), "=trunc", "b"), "trunc: bad binary format (truncated chunk)", "truncated binary")
  local main = load("return ...")
  T.eq(load(string.dump(main))(8), 8, "dump of main chunk keeps vararg")
  T.eq(select(2, load(string.dump(main)))  , nil, "loading dumped main succeeds")
  local envd = load(string.dump(load("return gx")), "=d", "b", {gx = "from env"})
  T.eq(envd(), "from env", "load binary with env sets first upvalue")
end

local function tmpwrite(content)
  local name = os.tmpname()
  local f = assert(io.open(name, "w"))
  f:write(content)
  f:close()
  return name
end

T.section "loadfile and dofile"
do
  local name = tmpwrite("local a = ... return (a or 0) + 1, 'second'")
  local f = loadfile(name)
  T.eq(f(41), 42, "loadfile chunk with argument")
  T.eq(select(2, dofile(name)), "second", "dofile returns all values")
  T.eq(debug.getinfo(f, "S").source, "@" .. name, "loadfile source is @name")
  os.remove(name)
  local sname = tmpwrite("#!/usr/bin/lua\nreturn 'shebang skipped'")
  T.eq(dofile(sname), "shebang skipped", "loadfile skips first line starting with #")
  os.remove(sname)
  local ename = tmpwrite("x = ")
  local ok, msg = loadfile(ename)
  T.eq(ok, nil, "loadfile syntax error returns nil")
  T.eq(msg, ename .. ":1: unexpected symbol near <eof>", "loadfile syntax error message")
  T.err(ename .. ":1: unexpected symbol near <eof>", dofile, "dofile propagates syntax error", ename)
  os.remove(ename)
  local missing = name .. ".missing"
  local m1, m2 = loadfile(missing)
  T.eq(m1, nil, "loadfile missing file")
  T.eq(m2, "cannot open " .. missing .. ": No such file or directory", "loadfile missing file message")
  local envname = tmpwrite("return who")
  T.eq(loadfile(envname, "t", {who = "env"})(), "env", "loadfile with env")
  T.eq(select(2, loadfile(envname, "b")), "attempt to load a text chunk (mode is 'b')", "loadfile mode b")
  os.remove(envname)
  local binname = os.tmpname()
  local bf = assert(io.open(binname, "wb"))
  bf:write(string.dump(function () return "binary file" end))
  bf:close()
  T.eq(dofile(binname), "binary file", "dofile binary chunk")
  os.remove(binname)
  local rtname = tmpwrite("error('from file')")
  local _, re = pcall(dofile, rtname)
  T.eq(re, rtname .. ":1: from file", "runtime error in dofile")
  os.remove(rtname)
end

T.section "require"
do
  local dir = T.tmpdir()
  local function modfile(name, content) T.write(dir .. "/" .. name .. ".lua", content) end
  modfile("cmodA", "local n, extra = ...; loads_count = (loads_count or 0) + 1; return {name = n, extra = extra}")
  modfile("cmodnil", "loaded_nil = true")
  modfile("cmodfalse", "return false")
  modfile("cmoderr", "error('module failed', 0)")
  local oldpath = package.path
  package.path = dir .. "/?.lua"
  local a, data = require("cmodA")
  T.eq(a.name, "cmodA", "module receives its name")
  T.eq(a.extra, dir .. "/cmodA.lua", "module receives file name")
  T.eq(data, dir .. "/cmodA.lua", "require returns loader data")
  T.eq(require("cmodA"), a, "require caches module")
  T.eq(select("#", require("cmodA")), 1, "cached require returns one value")
  T.eq(loads_count, 1, "module loaded once")
  T.eq(package.loaded.cmodA, a, "package.loaded entry")
  T.eq(require("cmodnil"), true, "module returning nothing stores true")
  T.eq(package.loaded.cmodnil, true, "package.loaded true for nil module")
  T.eq(require("cmodfalse"), false, "module returning false stores false")
  T.err("module failed", require, "error inside module propagates", "cmoderr")
  T.eq(package.loaded.cmoderr, nil, "failed module not cached")
  package.loaded.cmodA = nil
  require("cmodA")
  T.eq(loads_count, 2, "clearing package.loaded reloads")
  package.preload.pre = function (name, arg2) return {pre = name, arg = arg2} end
  local p, pd = require("pre")
  T.eq(p.pre, "pre", "preload loader receives name")
  T.eq(p.arg, ":preload:", "preload loader data")
  T.eq(pd, ":preload:", "require returns preload data")
  local ok, msg = pcall(require, "no.such.mod")
  T.ok(not ok, "missing module fails")
  T.ok(msg:find("^module 'no.such.mod' not found:") ~= nil, "module not found message start")
  T.ok(msg:find("no field package.preload['no.such.mod']", 1, true) ~= nil, "not found mentions preload")
  T.ok(msg:find("no file '" .. dir .. "/no/such/mod.lua'", 1, true) ~= nil, "not found lists path with dots replaced")
  T.eq(package.searchpath("cmodA", package.path), dir .. "/cmodA.lua", "searchpath finds file")
  local sp, spm = package.searchpath("x.y", dir .. "/?.lua;" .. dir .. "/?/init.lua")
  T.eq(sp, nil, "searchpath miss")
  T.eq(spm, "no file '" .. dir .. "/x/y.lua'\n\tno file '" .. dir .. "/x/y/init.lua'", "searchpath miss message")
  T.eq(package.searchpath("a.b", "?", ".", "_"), nil, "searchpath with custom separator miss")
  T.eq(select(2, package.searchpath("a.b", "?", ".", "_")), "no file 'a_b'", "searchpath custom separator")
  T.eq(#package.searchers, 4, "four searchers")
  T.eq(type(package.searchers[1]), "function", "searchers are functions")
  table.insert(package.searchers, 1, function (name)
    if name == "virtual" then return function (n, d) return "virtual:" .. n .. ":" .. d end, "vdata" end
    return "\n\tno virtual '" .. name .. "'"
  end)
  T.eq(require("virtual"), "virtual:virtual:vdata", "custom searcher")
  local _, vmsg = pcall(require, "nothing.here")
  T.ok(vmsg:find("no virtual 'nothing.here'", 1, true) ~= nil, "custom searcher message in not found")
  table.remove(package.searchers, 1)
  T.eq(package.config:sub(1, 1), "/", "package.config directory separator")
  T.eq(select(2, package.config:gsub("\n", "")), 5, "package.config has five lines")
  T.eq(package.config, "/\n;\n?\n!\n-\n", "package.config full")
  T.eq(type(package.cpath), "string", "cpath is a string")
  T.err("bad argument #1 to 'require' (string expected, got no value)", function () require() end, "require no name")
  T.eq(package.loaded.string, string, "standard libraries in package.loaded")
  T.eq(package.loaded._G, _G, "_G in package.loaded")
  package.path = oldpath
  for _, n in ipairs({"cmodA", "cmodnil", "cmodfalse", "cmoderr"}) do
    os.remove(dir .. "/" .. n .. ".lua")
    package.loaded[n] = nil
  end
  package.preload.pre = nil
  package.loaded.pre, package.loaded.virtual = nil, nil
  os.remove(dir)
  loads_count, loaded_nil = nil, nil
end

T.done()
