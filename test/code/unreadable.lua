-- unreadable.lua: a file the user cannot read gives stock Lua's error on
-- every load, even right after it was loaded (and cached) while readable.
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
T.done()
