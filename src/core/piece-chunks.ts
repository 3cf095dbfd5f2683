// Our extension of DownloadTask in transfer mode, shared by dfget (which asks for it) and dfdaemon (which honours
// it): a client that sends this gRPC metadata with the value `true` takes each piece's content in several
// messages (see daemon/grpc/piece-content.ts). A constant of its own so that dfget does not load daemon modules.

/** Request metadata by which a client says it takes a piece's content in several messages. */
export const PIECE_CHUNKS_METADATA = 'x-dragonfly-piece-content-chunks';
