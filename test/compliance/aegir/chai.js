// aegir/chai as the compliance suites use it: chai 4 with chai-as-promised (`eventually`),
// chai-bites (`equalBytes`) and chai-parentheses (`.to.be.empty()`), plugins aegir 47 registers.
import chai from 'chai'
import chaiAsPromised from 'chai-as-promised'
import chaiBites from 'chai-bites'
import chaiParentheses from 'chai-parentheses'

// In this order: chai-parentheses after chai-as-promised keeps `.property(name)` moving the
// assertion to the property (the other way round it stays on the object).
chai.use(chaiAsPromised)
chai.use(chaiParentheses)
chai.use(chaiBites)

export const expect = chai.expect
export const assert = chai.assert
export { chai }
