//! The declarations interfaces are written in: [`interface!`](crate::interface) for the
//! operations and errors, [`record!`](crate::record) for multi-value results and
//! [`word_enum!`](crate::word_enum) for small enums that travel as one word.
//!
//! One op's declaration `Name = label => fn name(arg: Type, ...) -> Result;` yields the
//! `Op::Name` label, the `Request::Name { arg, ... }` variant with its checked decoder and
//! encoder, the `Server::name` method, the client stub's `name` method and its arm in
//! `dispatch`. The op's doc comment is attached to all of them.

/// Declares an interface in the invoking module.
///
/// Generates `Op` (`#[repr(u64)]` labels), `Error` (`#[repr(u32)]`: the shared `Malformed`,
/// `ServerRestarted` and `InvalidReply`, then the declared variants), `Request` (checked
/// `decode`, `encode`), the `Server` trait, `dispatch` and the named client stub. A
/// compile-time check rejects an op whose arguments or result do not fit one message.
#[macro_export]
macro_rules! interface {
    (
        client $Client:ident;
        errors {
            $( $(#[$edoc:meta])* $Evar:ident = $ecode:literal, )*
        }
        ops {
            $(
                $(#[$odoc:meta])*
                $Var:ident = $code:literal => fn $method:ident ( $( $arg:ident : $Arg:ty ),* ) -> $Ret:ty;
            )*
        }
    ) => {
        /// The operations of this interface: a request's label.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u64)]
        pub enum Op {
            $( $(#[$odoc])* $Var = $code, )*
        }

        impl Op {
            /// Every operation, in label order.
            pub const ALL: &'static [Op] = &[ $( Op::$Var ),* ];

            /// The operation `label` names, or `None`.
            pub const fn from_label(label: u64) -> Option<Op> {
                match label {
                    $( $code => Some(Op::$Var), )*
                    _ => None,
                }
            }
        }

        /// The errors of this interface: a reply's non-zero label.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u32)]
        pub enum Error {
            /// The request could not be decoded: unknown operation, wrong number of words, a
            /// value out of range, a bad name, or a missing or unexpected capability.
            Malformed = 1,
            /// The server restarted since it issued the handle or session the request names;
            /// look the service up again and start over.
            ServerRestarted = $crate::SERVER_RESTARTED as u32,
            /// The reply could not be decoded. Produced by the client stub, never sent.
            InvalidReply = 3,
            $( $(#[$edoc])* $Evar = $ecode, )*
        }

        impl Error {
            /// Every error, in code order.
            pub const ALL: &'static [Error] = &[
                Error::Malformed, Error::ServerRestarted, Error::InvalidReply, $( Error::$Evar ),*
            ];
        }

        impl $crate::retry::Transient for Error {
            /// Only `ServerRestarted`: the server is back and a new request may succeed.
            fn is_transient(&self) -> bool {
                matches!(self, Error::ServerRestarted)
            }
        }

        impl core::fmt::Display for Error {
            /// The variant's name (`NotFound`), as in the interface's declaration.
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                core::fmt::Debug::fmt(self, f)
            }
        }

        impl $crate::codec::ErrorCode for Error {
            const MALFORMED: Error = Error::Malformed;
            const INVALID_REPLY: Error = Error::InvalidReply;
            fn code(self) -> u32 {
                self as u32
            }
            fn from_code(code: u64) -> Option<Error> {
                Error::ALL.iter().copied().find(|e| u64::from(*e as u32) == code)
            }
        }

        /// A decoded, validated request. The fields are the operation's arguments (see
        /// [`Server`]).
        #[allow(missing_docs)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Request {
            $( $(#[$odoc])* $Var { $( $arg: $Arg ),* }, )*
        }

        const _: () = {
            $(
                assert!(
                    $crate::codec::fits(
                        0 $( + <$Arg as $crate::codec::Field>::MAX_WORDS )*,
                        0 $( + <$Arg as $crate::codec::Field>::CAPS )*
                    ),
                    concat!("the arguments of ", stringify!($method), " do not fit one message")
                );
                assert!(
                    $crate::codec::fits(
                        <$Ret as $crate::codec::Field>::MAX_WORDS,
                        <$Ret as $crate::codec::Field>::CAPS
                    ),
                    concat!("the result of ", stringify!($method), " does not fit one message")
                );
            )*
        };

        impl Request {
            /// The request's operation.
            pub fn op(&self) -> Op {
                match self {
                    $( Request::$Var { .. } => Op::$Var, )*
                }
            }

            /// Parses `message`: `Err(Error::Malformed)` for an unknown label, a missing,
            /// extra or invalid word, or a missing or unexpected capability.
            pub fn decode(message: &$crate::Message) -> Result<Request, Error> {
                use $crate::codec::Field as _;
                let op = Op::from_label(message.label).ok_or(Error::Malformed)?;
                let mut r = $crate::codec::Reader::new(message);
                let request = match op {
                    $( Op::$Var => {
                        $( let $arg = <$Arg>::take(&mut r).map_err(|_| Error::Malformed)?; )*
                        Request::$Var { $( $arg ),* }
                    } )*
                };
                r.finish().map_err(|_| Error::Malformed)?;
                Ok(request)
            }

            /// The request as a message (`Err(Error::Malformed)` only if it does not fit,
            /// which the declaration's compile-time check rules out).
            pub fn encode(&self) -> Result<$crate::Message, Error> {
                use $crate::codec::Field as _;
                let mut w = $crate::codec::Writer::new(self.op() as u64);
                match self {
                    $( Request::$Var { $( $arg ),* } => { $( $arg.put(&mut w); )* } )*
                }
                w.finish().map_err(|_| Error::Malformed)
            }
        }

        /// What a server of this interface implements; [`dispatch`] calls it with the
        /// client's badge and a validated request.
        pub trait Server {
            $(
                $(#[$odoc])*
                fn $method(&mut self, badge: u64 $(, $arg: $Arg )*) -> Result<$Ret, Error>;
            )*
        }

        /// Serves one message from the client with `badge`: decodes it, calls `server` and
        /// returns the reply. An undecodable message gets a `Malformed` reply; this never
        /// panics on any message.
        pub fn dispatch(server: &mut impl Server, badge: u64, message: &$crate::Message) -> $crate::Message {
            match Request::decode(message) {
                Err(e) => $crate::codec::error_reply(e),
                Ok(request) => match request {
                    $( Request::$Var { $( $arg ),* } => {
                        $crate::codec::encode_reply(&server.$method(badge $(, $arg )*))
                    } )*
                },
            }
        }

        /// The client stub: one method per operation, over any [`Transport`]($crate::Transport).
        #[derive(Debug)]
        pub struct $Client<T: $crate::Transport> {
            transport: T,
        }

        impl<T: $crate::Transport> $Client<T> {
            /// A client that sends its requests through `transport`.
            pub fn new(transport: T) -> Self {
                Self { transport }
            }

            /// The transport, for example to change its receive slot.
            pub fn transport(&mut self) -> &mut T {
                &mut self.transport
            }

            /// Gives the transport back.
            pub fn into_inner(self) -> T {
                self.transport
            }

            fn request<R: $crate::codec::Field>(&mut self, request: Request) -> Result<R, Error> {
                let message = request.encode()?;
                let reply = self.transport.call(&message);
                $crate::codec::decode_reply(&reply)
            }

            $(
                $(#[$odoc])*
                ///
                /// Besides the errors above, any call may fail with `InvalidReply` (the reply
                /// did not decode) or `ServerRestarted`.
                pub fn $method(&mut self $(, $arg: $Arg )*) -> Result<$Ret, Error> {
                    self.request(Request::$Var { $( $arg ),* })
                }
            )*
        }
    };
}

/// Declares a struct of [`Field`](crate::codec::Field)s that travels as its fields in order.
#[macro_export]
macro_rules! record {
    (
        $(#[$doc:meta])*
        pub struct $Name:ident {
            $( $(#[$fdoc:meta])* pub $field:ident : $T:ty, )*
        }
    ) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $Name {
            $( $(#[$fdoc])* pub $field: $T, )*
        }

        impl $crate::codec::Field for $Name {
            const MAX_WORDS: usize = 0 $( + <$T as $crate::codec::Field>::MAX_WORDS )*;
            const CAPS: usize = 0 $( + <$T as $crate::codec::Field>::CAPS )*;
            fn put(&self, w: &mut $crate::codec::Writer) {
                $( $crate::codec::Field::put(&self.$field, w); )*
            }
            fn take(r: &mut $crate::codec::Reader<'_>) -> Result<Self, $crate::codec::DecodeError> {
                Ok($Name { $( $field: <$T as $crate::codec::Field>::take(r)?, )* })
            }
        }
    };
}

/// Declares a `#[repr(u64)]` enum that travels as one word; other values fail to decode.
#[macro_export]
macro_rules! word_enum {
    (
        $(#[$doc:meta])*
        pub enum $Name:ident {
            $( $(#[$vdoc:meta])* $Var:ident = $value:literal, )*
        }
    ) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u64)]
        pub enum $Name {
            $( $(#[$vdoc])* $Var = $value, )*
        }

        impl $Name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$Name] = &[ $( $Name::$Var ),* ];
        }

        impl $crate::codec::Field for $Name {
            const MAX_WORDS: usize = 1;
            fn put(&self, w: &mut $crate::codec::Writer) {
                w.word(*self as u64);
            }
            fn take(r: &mut $crate::codec::Reader<'_>) -> Result<Self, $crate::codec::DecodeError> {
                match r.word()? {
                    $( $value => Ok($Name::$Var), )*
                    _ => Err($crate::codec::DecodeError),
                }
            }
        }
    };
}
