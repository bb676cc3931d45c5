-- harness.lua: the compatibility suite's checks. Every check prints one line
-- ("ok" or "not ok" with the reason); the runner compares the transcripts of
-- the stock and the Shoal builds, so a check must print the same line on both.
local T = {}
local passed, failed, n = 0, 0, 0
local section = "?"

local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  return tostring(v)
end

local function report(good, name, why)
  n = n + 1
  local label = section .. ": " .. (name or ("check " .. n))
  if good then
    passed = passed + 1
    print("ok " .. label)
  else
    failed = failed + 1
    print("not ok " .. label .. " -- " .. tostring(why))
  end
  return good
end

function T.section(name) section = name end

function T.ok(cond, name) return report(cond and true or false, name, "condition is false") end

function T.eq(got, want, name)
  local same = got == want or (got ~= got and want ~= want)  -- NaN equals NaN here
  if same and math.type(got) ~= math.type(want) then same = false end
  return report(same, name, "got " .. show(got) .. " (" .. (math.type(got) or type(got)) ..
                "), want " .. show(want) .. " (" .. (math.type(want) or type(want)) .. ")")
end

-- T.err(want, f, name, ...): f(...) must raise an error; when want is a
-- string the message must equal it, with a leading "file:line: " ignored if
-- want has none; when want is a table {pattern = p} it must match p.
function T.err(want, f, name, ...)
  local ok, msg = pcall(f, ...)
  if ok then return report(false, name, "no error raised") end
  if type(want) == "table" then
    return report(type(msg) == "string" and msg:find(want.pattern) ~= nil, name,
                  "message " .. show(msg) .. " does not match " .. show(want.pattern))
  end
  local text = msg
  if type(msg) == "string" and not want:find("^[^:]+:%d+:") then
    text = msg:gsub("^[^:]+:%d+: ", "", 1)
  end
  return report(text == want, name, "message " .. show(msg) .. ", want " .. show(want))
end

-- T.tmpdir(): a new empty folder; T.write(name, text, mode): a file holding
-- text (opened with mode, "w" unless given).
function T.tmpdir()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir " .. dir))
  return dir
end

function T.write(name, text, mode)
  local f = assert(io.open(name, mode or "w"))
  f:write(text)
  f:close()
end

-- T.done(): the summary line, and the exit status the runner reads.
function T.done()
  print(string.format("%d passed, %d failed", passed, failed))
  os.exit(failed == 0 and 0 or 1, true)  -- close the state: leak checks see it all
end

return T
