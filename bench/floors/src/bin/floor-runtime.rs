//! The runtime floor: `lambda_http` receiving the bench's events and answering them,
//! with nothing else.

use lambda_http::{Error, Request, service_fn};
use session_floors::{answer, created, new_key, status_for};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_http::run(service_fn(|request: Request| async move {
        let status = status_for(request.method());
        let body = if status.as_u16() == 201 {
            created(&new_key()?)
        } else {
            String::new()
        };
        answer(status, body)
    }))
    .await
}
