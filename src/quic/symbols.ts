/** Internal seams between the QUIC classes; not part of the public API. */
export const kTaken = Symbol('taken')
export const kOpened = Symbol('opened')
export const kConnected = Symbol('connected')
export const kCloseError = Symbol('closeError')
export const kStreamBlocked = Symbol('streamBlocked')
export const kClosedByApp = Symbol('closedByApp')
export const kAbort = Symbol('abort')
export const kOwned = Symbol('owned')
