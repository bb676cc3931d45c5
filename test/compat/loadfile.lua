-- loadfile.lua: loading the same files again and again (in Shoal, the
-- code cache's hits) gives what the first load gave: values, errors, modes,
-- chunk names, line numbers, upvalues, string identity.
local T = require "harness"

local write = T.write
local dir = T.tmpdir()
local files = {}
local function file (base, text, mode)
  local name = dir .. "/" .. base
  write(name, text, mode)
  files[#files + 1] = name
  return name
end

T.section "repeated loads"
do
  local mod = file("mod.lua", [[
local M = {name = "mod", count = 0}
function M.bump () M.count = M.count + 1; return M.count end
function M.fail () local t = nil; return t.field end
M.long = "]] .. string.rep("long constant ", 10) .. [["
return M
]])
  local a, b = dofile(mod), dofile(mod)
  T.ok(a ~= b, "each load makes new closures and tables")
  T.eq(a.bump(), 1, "first instance counts")
  T.eq(a.bump(), 2, "first instance keeps its state")
  T.eq(b.bump(), 1, "second instance has its own upvalues")
  local key = "na" .. "me"
  T.eq(b[key], "mod", "key made at run time finds the constant key")
  local t = {}
  t[key] = 1
  T.eq(t.name, 1, "constant key finds the key made at run time")
  T.eq(b.long, string.rep("long constant ", 10), "long string constant")
  local lt = {[string.rep("long constant ", 10)] = "yes"}
  T.eq(lt[b.long], "yes", "long string constant as a key")
  for i = 1, 5 do dofile(mod) end
  local f1, f2 = loadfile(mod), loadfile(mod)
  T.ok(f1 ~= f2, "loadfile gives distinct functions")
  T.eq(f1().name, "mod", "loadfile function runs")
end

T.section "debug information"
do
  local mod = file("dbg.lua", "local M = {}\n\nfunction M.fail ()\n  local t = nil\n  return t.field\nend\n\nreturn M\n")
  for round = 1, 3 do
    local M = dofile(mod)
    local ok, msg = pcall(M.fail)
    T.eq(msg, mod .. ":5: attempt to index a nil value (local 't')", "error position, load " .. round)
    local info = debug.getinfo(M.fail, "SlL")
    T.eq(info.source, "@" .. mod, "source, load " .. round)
    T.eq(info.short_src, mod, "short_src, load " .. round)
    T.eq(info.linedefined, 3, "linedefined, load " .. round)
    T.eq(info.lastlinedefined, 6, "lastlinedefined, load " .. round)
    local lines = {}
    for l in pairs(info.activelines) do lines[#lines + 1] = l end
    table.sort(lines)
    T.eq(table.concat(lines, ","), "4,5,6", "activelines, load " .. round)
    local tb = select(2, xpcall(M.fail, debug.traceback))
    T.ok(tb:find(mod .. ":5: in function", 1, true) ~= nil, "traceback line, load " .. round)
    T.eq(debug.getlocal(M.fail, 1), nil, "no parameters, load " .. round)
  end
  local f = loadfile(mod)
  T.eq(debug.getupvalue(f, 1), "_ENV", "main chunk's upvalue is _ENV")
  T.eq(select(2, debug.getupvalue(f, 1)), _G, "main chunk's _ENV is the globals")
end

T.section "names"
do
  -- two spellings of one file: each load keeps the name it was loaded by
  local name = file("spell.lua", "local t = nil\nreturn debug.getinfo(1, 'S').source, function () return t.x end")
  for round = 1, 2 do
    for i, n in ipairs{name, dir .. "/./spell.lua", dir .. "//spell.lua"} do
      local src, f = dofile(n)
      T.eq(src, "@" .. n, "chunk name is the name loaded by " .. i .. ", load " .. round)
      T.eq(select(2, pcall(f)), n .. ":2: attempt to index a nil value (upvalue 't')",
           "error message names it " .. i .. ", load " .. round)
    end
  end
  -- a text chunk after a # line keeps its line numbers
  local sb = file("shebang.lua", "#!/usr/bin/env lua\nlocal t = nil\nreturn t.x")
  for round = 1, 2 do
    T.err(sb .. ":3: attempt to index a nil value (local 't')", dofile, "text after a # line, load " .. round, sb)
  end
end

T.section "environments"
do
  local mod = file("env.lua", "return who")
  who = "global"
  T.eq(loadfile(mod, "t", {who = "one"})(), "one", "env table, first load")
  T.eq(loadfile(mod, "t", {who = "two"})(), "two", "env table, second load")
  T.eq(loadfile(mod)(), "global", "no env: globals")
  T.err(mod .. ":1: attempt to index a nil value (upvalue '_ENV')", loadfile(mod, "t", nil),
        "explicit nil env")
  who = nil
end

T.section "modes"
do
  local txt = file("txt.lua", "return 'text'")
  local bin = file("bin.luac", string.dump(load("return 'binary'")), "wb")
  for round = 1, 2 do
    T.eq(select(2, loadfile(bin, "t")), "attempt to load a binary chunk (mode is 't')", "binary with mode t, " .. round)
    T.eq(select(2, loadfile(txt, "b")), "attempt to load a text chunk (mode is 'b')", "text with mode b, " .. round)
    T.eq(loadfile(bin, "b")(), "binary", "binary with mode b, " .. round)
    T.eq(loadfile(txt, "t")(), "text", "text with mode t, " .. round)
    T.eq(loadfile(bin, "bt")(), "binary", "binary with mode bt, " .. round)
    T.eq(loadfile(txt)(), "text", "text with no mode, " .. round)
    T.eq(select(2, loadfile(txt, "x")), "attempt to load a text chunk (mode is 'x')", "unknown mode, " .. round)
  end
  local sb = file("shebang.luac", "#!/usr/bin/lua\n" .. string.dump(load("return 'after shebang'")), "wb")
  T.eq(dofile(sb), "after shebang", "binary chunk after a # line")
  T.eq(select(2, loadfile(sb, "t")), "attempt to load a binary chunk (mode is 't')", "binary after # line, mode t")
  local bom = file("bom.lua", "\239\187\191return 'bom'")
  T.eq(dofile(bom), "bom", "BOM skipped")
  T.eq(dofile(bom), "bom", "BOM skipped again")
end

T.section "errors"
do
  local bad = file("bad.lua", "local x = = 1")
  for round = 1, 3 do
    local f, msg = loadfile(bad)
    T.eq(f, nil, "syntax error, " .. round)
    T.eq(msg, bad .. ":1: unexpected symbol near '='", "syntax error message, " .. round)
  end
  write(bad, "return 'fixed'")
  T.eq(dofile(bad), "fixed", "fixed file loads")
  local missing = dir .. "/missing.lua"
  for round = 1, 2 do
    T.eq(select(2, loadfile(missing)), "cannot open " .. missing .. ": No such file or directory", "missing file, " .. round)
  end
  T.eq(select(2, loadfile(dir)), "cannot read " .. dir .. ": Is a directory", "a directory")
  local rt = file("rt.lua", "error('boom')")
  T.err(rt .. ":1: boom", dofile, "runtime error from loaded file", rt)
  T.err(rt .. ":1: boom", dofile, "runtime error again", rt)
end

T.section "edits"
do
  local mod = file("edit.lua", "return 1")
  T.eq(dofile(mod), 1, "first version")
  write(mod, "return 22")
  T.eq(dofile(mod), 22, "edited file: new code")
  os.remove(mod)
  T.eq(select(2, loadfile(mod)), "cannot open " .. mod .. ": No such file or directory", "removed file")
  write(mod, "return 333")
  T.eq(dofile(mod), 333, "recreated file")
  -- same size, same inode, at once: the timestamps may not have moved
  for i = 4, 9 do
    write(mod, "return " .. i .. i .. i)
    T.eq(dofile(mod), i * 111, "same-size edit " .. i)
  end
end

T.section "require"
do
  local saved = package.path
  package.path = dir .. "/?.lua"
  file("reqmod.lua", "local name = ... return {name = name, file = select(2, ...)}")
  local m = require "reqmod"
  T.eq(m.name, "reqmod", "require passes the module name")
  T.eq(m.file, dir .. "/reqmod.lua", "require passes the file name")
  package.loaded.reqmod = nil
  local m2 = require "reqmod"
  T.ok(m ~= m2, "require again after unloading runs the file again")
  T.eq(m2.name, "reqmod", "second require")
  package.path = saved
  package.loaded.reqmod = nil
end

for _, name in ipairs(files) do os.remove(name) end
os.remove(dir .. "/missing.lua")
os.execute("rmdir " .. dir)
T.done()
