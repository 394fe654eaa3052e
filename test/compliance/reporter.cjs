// mocha's spec reporter that also writes the run's counts (passes, failures, tests) as JSON to the
// file given as --reporter-option output=<file>, for scripts/test.mjs's closing line.
const { writeFileSync } = require('node:fs')
const { reporters: { Spec }, Runner } = require('mocha')

class SpecWithCounts extends Spec {
  constructor (runner, options) {
    super(runner, options)
    const output = (options.reporterOption ?? options.reporterOptions ?? {}).output
    runner.once(Runner.constants.EVENT_RUN_END, () => {
      if (output !== undefined) writeFileSync(output, JSON.stringify({ stats: this.stats }))
    })
  }
}

module.exports = SpecWithCounts
