export { RemoteIsol8, type RemoteConnection, type RemoteSessionInfo } from "./remote.js";
export { RemoteError, errorFromResponse, type ReceivedErrorBody, type RemoteErrorCode, type RemoteErrorInfo } from "./errors.js";
export { SseParser, type SseMessage } from "./sse.js";
