-- unreadable.lua: a file the user cannot read gives stock Lua's error on
-- every load, even right after it was loaded (and cached) while readable;
-- require's search passes over it.
-- Runs on both builds, as a user without the power to read anything (the
-- runner drops root with setpriv).
local T = require "harness"
local name = os.tmpname()
local function write (text)
  local f = assert(io.open(name, "w"))
  f:write(text)
  f:close()
end

T.section "unreadable"
write("return 'readable'")
T.eq(dofile(name), "readable", "readable file loads")
T.eq(dofile(name), "readable", "and loads again")
assert(os.execute("chmod 000 " .. name))
for round = 1, 2 do
  local f, msg = loadfile(name)
  T.eq(f, nil, "unreadable file: no function, " .. round)
  T.eq(msg, "cannot open " .. name .. ": Permission denied", "unreadable file: message, " .. round)
end
T.err("cannot open " .. name .. ": Permission denied", dofile, "dofile raises it", name)
assert(os.execute("chmod 644 " .. name))
T.eq(dofile(name), "readable", "readable again")
os.remove(name)

-- require's search passes over a module file made unreadable, even one
-- loaded (and cached) while readable, to the next template, as stock does
T.section "unreadable module"
local top = os.tmpname()
os.remove(top)
assert(os.execute("mkdir -p " .. top .. "/a " .. top .. "/b"))
for _, d in ipairs{"a", "b"} do
  local f = assert(io.open(top .. "/" .. d .. "/m.lua", "w"))
  f:write("return '" .. d .. "'")
  f:close()
end
package.path = top .. "/a/?.lua;" .. top .. "/b/?.lua"
local function req ()  -- the module, or require's error
  package.loaded.m = nil
  return select(2, pcall(require, "m"))
end
T.eq(req(), "a", "the first template's module")
T.eq(req(), "a", "and again")
assert(os.execute("chmod 000 " .. top .. "/a/m.lua"))
T.eq(req(), "b", "unreadable: the next template's module")
T.eq(package.searchpath("m", package.path), top .. "/b/m.lua",
     "unreadable: searchpath passes it over")
assert(os.execute("chmod 644 " .. top .. "/a/m.lua"))
T.eq(req(), "a", "readable again")
assert(os.execute("rm -rf " .. top))
T.done()
