-- procmode.lua: the process mode, SHOAL_CODECACHE, read by the library
-- itself: each case runs a Lua of its own with the variable set.
local T = require "harness"

-- quoted for the shell: the checkout's path may hold spaces or quotes
local function q (s) return "'" .. s:gsub("'", "'\\''") .. "'" end
local lua = q(arg[-1])
local dir = T.tmpdir()
local write = T.write

-- loads a file, edits it (another size), loads it again
local script = dir .. "/main.lua"
write(script, [[
local name = ...
local function put (text) local f = assert(io.open(name, "w")) f:write(text) f:close() end
put("return 1")
local a = dofile(name)
put("return 22")
local b = dofile(name)
local s = require("shoal.cache").stats()
io.write(s.process_mode, " ", a, " ", b, " ", s.misses + s.hits)
]])

local function run (value)  -- all the output of a Lua with SHOAL_CODECACHE=value
  local p = assert(io.popen("env SHOAL_CODECACHE=" .. value .. " " .. lua .. " " ..
                            q(script) .. " " .. q(dir .. "/mod.lua") .. " 2>&1"))
  local out = p:read("a")
  p:close()
  return out
end

T.section "process mode"
T.eq(run("on"), "on 1 22 3", "on: an edit is seen")
T.eq(run("''"), "on 1 22 3", "empty: on")
T.eq(run("off"), "off 1 22 0", "off: the cache is not used")
T.eq(run("trust"), "trust 1 1 3", "trust: hits do not look for edits")
T.eq(run("sometimes"), "shoal: SHOAL_CODECACHE must be on, off or trust (not 'sometimes'); using on\non 1 22 3",
     "a bad value: reported, and on is used")

os.execute("rm -rf " .. q(dir))
T.done()
