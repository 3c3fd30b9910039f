// Helpers for bench/cache-conformance/run. Node's standard library only; the suite's own
// modules (its test list, its result classification and its published results) are imported
// at run time from the suite's directory, never copied here.
//
//   node helper.mjs ports N
//       print N free TCP ports on 127.0.0.1
//   node helper.mjs summary SUITE_DIR RESULTS_JSON META_JSON OUT_JSON [COMPARE]
//       classify every test of RESULTS_JSON as the suite's result pages do (dependencies
//       honoured), print per-section tables for voltfleet-proxy and, side by side, for the
//       implementations the suite publishes results of (COMPARE: comma-separated result file
//       names without .json, default nginx,varnish,caddy), list the failures, and write it
//       all to OUT_JSON
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { pathToFileURL } from 'node:url'

function fail (message) {
  console.error(`helper.mjs: ${message}`)
  process.exit(1)
}

async function ports (count) {
  const servers = []
  for (let i = 0; i < count; i++) {
    const server = net.createServer()
    await new Promise((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, '127.0.0.1', resolve)
    })
    servers.push(server)
  }
  console.log(servers.map(s => s.address().port).join(' '))
  await Promise.all(servers.map(s => new Promise(resolve => s.close(resolve))))
}

// The categories of the suite's result pages, in display order.
const CATEGORIES = [
  ['pass', 'pass'],
  ['fail', 'fail'],
  ['optional', 'optional_fail'],
  ['check_yes', 'yes'],
  ['check_no', 'no'],
  ['dependency', 'dependency_fail'],
  ['setup', 'setup_fail'],
  ['harness', 'harness_fail'],
  ['retry', 'retry'],
  ['untested', 'untested']
]

function emptyCounts () {
  return Object.fromEntries(CATEGORIES.map(([name]) => [name, 0]))
}

async function summary (suiteDir, resultsFile, metaFile, outFile, compareList) {
  const importFrom = rel => import(pathToFileURL(path.join(suiteDir, rel)).href)
  const suites = (await importFrom('tests/index.mjs')).default
  const { determineTestResult, resultTypes } = await importFrom('test-engine/lib/results.mjs')
  const categoryOf = type => {
    for (const [name, key] of CATEGORIES) if (resultTypes[key] === type) return name
    return 'harness'
  }

  const ours = JSON.parse(fs.readFileSync(resultsFile, 'utf8'))
  const meta = JSON.parse(fs.readFileSync(metaFile, 'utf8'))

  // The published results, as the suite's index names them.
  let published = []
  try {
    published = (await importFrom('results/index.mjs')).default
  } catch (err) {
    console.error(`helper.mjs: the suite has no readable results/index.mjs (${err.message}); no comparison`)
  }
  const others = []
  for (const file of compareList) {
    const entry = published.find(item => item.file === `${file}.json`)
    const full = path.join(suiteDir, 'results', `${file}.json`)
    if (!entry || !fs.existsSync(full)) {
      console.error(`helper.mjs: the suite publishes no results for '${file}'; left out of the comparison`)
      continue
    }
    others.push({
      name: entry.name,
      version: entry.version,
      file: entry.file,
      results: JSON.parse(fs.readFileSync(full, 'utf8'))
    })
  }

  // Tests the command-line runner runs against a reverse proxy (it skips browser-only ones).
  const runnable = test => test.browser_only !== true
  const ourVersion = String(meta.proxy_version || '').replace(/^voltfleet-proxy\s*/, '')
  const implementations = [{ name: 'voltfleet-proxy', version: ourVersion, results: ours }, ...others]
  const sections = []
  const totals = implementations.map(() => emptyCounts())
  const failures = { fail: [], optional: [], dependency: [], setup: [], harness: [], retry: [] }
  for (const suite of suites) {
    const tests = suite.tests.filter(runnable)
    const counts = implementations.map(() => emptyCounts())
    for (const test of tests) {
      implementations.forEach((impl, i) => {
        const category = categoryOf(determineTestResult(suites, test.id, impl.results, true))
        counts[i][category]++
        totals[i][category]++
        if (i === 0 && category in failures) {
          const raw = impl.results[test.id]
          failures[category].push({
            section: suite.name,
            id: test.id,
            kind: test.kind || 'required',
            name: test.name,
            spec_anchors: test.spec_anchors || [],
            message: Array.isArray(raw) ? raw.join(': ') : String(raw),
            depends_on: test.depends_on || []
          })
        }
      })
    }
    sections.push({ id: suite.id, name: suite.name, tests: tests.length, counts })
  }

  // ---- tables
  const pad = (text, width) => String(text).padEnd(width)
  const num = (value, width) => String(value).padStart(width)
  const nameWidth = Math.max(...sections.map(s => s.name.length), 'section'.length, 'total'.length) + 2

  console.log(`\nvoltfleet-proxy against ${meta.suite} (${meta.suite_commit.slice(0, 12)}), ${meta.date}`)
  const detail = ['pass', 'fail', 'optional', 'check_yes', 'check_no', 'dependency', 'setup', 'harness', 'retry']
  const heads = ['pass', 'fail', 'opt', 'chk:Y', 'chk:N', 'dep', 'setup', 'harn', 'retry']
  const line = '-'.repeat(nameWidth + 6 + heads.length * 7)
  console.log(line)
  console.log(pad('section', nameWidth) + num('tests', 6) + heads.map(h => num(h, 7)).join(''))
  console.log(line)
  for (const s of sections) {
    console.log(pad(s.name, nameWidth) + num(s.tests, 6) + detail.map(c => num(s.counts[0][c] || '.', 7)).join(''))
  }
  console.log(line)
  const testTotal = sections.reduce((a, s) => a + s.tests, 0)
  console.log(pad('total', nameWidth) + num(testTotal, 6) + detail.map(c => num(totals[0][c], 7)).join(''))
  console.log(line)
  console.log('pass: passed; fail: failed a required test; opt: failed an optional ("optimal") one;')
  console.log('chk: informational checks (yes/no); dep: not counted, a test it depends on did not pass;')
  console.log('setup/harn/retry: the exchange itself failed, the harness failed, or the cache retried.')

  if (others.length) {
    console.log('\nSide by side with the results the suite publishes (pass / fail / optional fail)')
    const colWidth = 18
    const cellOf = text => num(text, colWidth)
    const head2 = implementations.map(impl => cellOf(impl.name)).join('')
    const vers = implementations.map(impl => cellOf(impl.version ? String(impl.version).slice(0, colWidth - 2) : '')).join('')
    const triple = implementations.map(() => cellOf('pass fail  opt')).join('')
    const wide = '-'.repeat(nameWidth + 6 + colWidth * implementations.length)
    console.log(wide)
    console.log(pad('', nameWidth + 6) + head2)
    console.log(pad('', nameWidth + 6) + vers)
    console.log(pad('section', nameWidth) + num('tests', 6) + triple)
    console.log(wide)
    const cell = c => cellOf(`${num(c.pass, 4)} ${num(c.fail, 4)} ${num(c.optional, 4)}`)
    for (const s of sections) {
      console.log(pad(s.name, nameWidth) + num(s.tests, 6) + s.counts.map(cell).join(''))
    }
    console.log(wide)
    console.log(pad('total', nameWidth) + num(testTotal, 6) + totals.map(cell).join(''))
    console.log(pad('not counted (dep/setup/harness/retry)', nameWidth + 6) +
      totals.map(c => cellOf(c.dependency + c.setup + c.harness + c.retry)).join(''))
    console.log(pad('informational checks (yes/no)', nameWidth + 6) +
      totals.map(c => cellOf(`${c.check_yes}/${c.check_no}`)).join(''))
    console.log(pad('not in that run', nameWidth + 6) + totals.map(c => cellOf(c.untested)).join(''))
    console.log(wide)
    console.log('Published results come from the suite\'s results/ directory and may predate its')
    console.log('current tests; a test missing from them counts as "not in that run".')
  }

  const list = (title, items, withMessage = true) => {
    if (!items.length) return
    console.log(`\n${title} (${items.length})`)
    for (const item of items) {
      console.log(`  ${item.id}${withMessage ? '\n      ' + item.message : ''}`)
    }
  }
  list('Failed required tests', failures.fail)
  list('Failed optional tests', failures.optional)
  list('Setup failures', failures.setup)
  list('Harness failures', failures.harness)
  list('Retries', failures.retry)
  list('Not counted: a test they depend on did not pass', failures.dependency.map(item => ({
    ...item, message: `depends on ${item.depends_on.join(', ')}`
  })))

  const out = {
    meta,
    sections: sections.map(s => ({
      id: s.id,
      name: s.name,
      tests: s.tests,
      results: Object.fromEntries(implementations.map((impl, i) => [impl.name, s.counts[i]]))
    })),
    totals: Object.fromEntries(implementations.map((impl, i) => [impl.name, totals[i]])),
    compared: others.map(o => ({ name: o.name, version: o.version, file: o.file })),
    failures
  }
  fs.writeFileSync(outFile, JSON.stringify(out, null, 2) + '\n')
}

const [command, ...args] = process.argv.slice(2)
if (command === 'ports') {
  await ports(parseInt(args[0] || '1', 10))
} else if (command === 'summary') {
  if (args.length < 4) fail('summary SUITE_DIR RESULTS_JSON META_JSON OUT_JSON [COMPARE]')
  const compare = (args[4] || 'nginx,varnish,caddy').split(',').map(s => s.trim()).filter(Boolean)
  await summary(path.resolve(args[0]), args[1], args[2], args[3], compare)
} else {
  fail(`unknown command '${command}' (ports, summary)`)
}
