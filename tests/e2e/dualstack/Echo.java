// SPDX-License-Identifier: MIT
// Java's own sockets, as Java programs use them (test-dualstack.sh): a
// ServerSocket on every address (Java binds [::], dual-stack) and a Socket to
// an IPv4 address (Java connects an AF_INET6 socket to ::ffff:a.b.c.d).
//
//   java Echo.java server PORT         accept clients; each: read a line, answer
//                                      "LOCAL REMOTE" as Java sees them, then
//                                      echo every byte until EOF
//   java Echo.java client IP PORT N    connect, print "LOCAL REMOTE" of both
//                                      sides, stream N bytes through the echo
//                                      and check them (exit 1 on a mismatch)
import java.io.*;
import java.net.*;
import java.util.Random;

public class Echo {
	static String view(Socket s) {
		return s.getLocalSocketAddress() + " " + s.getRemoteSocketAddress();
	}

	public static void main(String[] a) throws Exception {
		if (a[0].equals("server")) {
			try (ServerSocket ss = new ServerSocket(Integer.parseInt(a[1]))) {
				System.out.println("READY " + ss.getLocalSocketAddress());
				System.out.flush();
				for (;;) {
					Socket s = ss.accept();
					new Thread(() -> serve(s)).start();
				}
			}
		}
		try (Socket s = new Socket(a[1], Integer.parseInt(a[2]))) {
			s.setTcpNoDelay(true);
			long n = Long.parseLong(a[3]);
			OutputStream out = s.getOutputStream();
			InputStream in = s.getInputStream();
			out.write("hello\n".getBytes());
			out.flush();
			System.out.println("client " + view(s));
			System.out.println("server " + readLine(in));
			Thread w = new Thread(() -> {
				try {
					Random r = new Random(42);
					byte[] b = new byte[65536];
					for (long left = n; left > 0; left -= b.length) {
						r.nextBytes(b);
						out.write(b, 0, (int) Math.min(left, b.length));
					}
					s.shutdownOutput();
				} catch (IOException e) {
					throw new UncheckedIOException(e);
				}
			});
			w.start();
			Random r = new Random(42);
			byte[] want = new byte[65536], got = new byte[65536];
			long seen = 0;
			int have = 0;
			while (seen < n) {
				if (have == 0) {
					r.nextBytes(want);
					have = 65536;
				}
				int k = in.read(got, 0, (int) Math.min(have, n - seen));
				if (k < 0)
					throw new EOFException("echo ended after " + seen + " of " + n);
				for (int i = 0; i < k; i++)
					if (got[i] != want[65536 - have + i])
						throw new IOException("echo differs at byte " + (seen + i));
				have -= k;
				seen += k;
			}
			if (in.read() != -1)
				throw new IOException("no EOF after the echo");
			w.join();
			System.out.println("echoed " + seen + " bytes");
		}
	}

	static String readLine(InputStream in) throws IOException {
		StringBuilder sb = new StringBuilder();
		for (int c; (c = in.read()) != '\n';) {
			if (c < 0)
				throw new EOFException("EOF in a line");
			sb.append((char) c);
		}
		return sb.toString();
	}

	static void serve(Socket s) {
		try (s) {
			InputStream in = s.getInputStream();
			OutputStream out = s.getOutputStream();
			readLine(in);
			out.write((view(s) + "\n").getBytes());
			byte[] b = new byte[65536];
			for (int k; (k = in.read(b)) > 0;)
				out.write(b, 0, k);
		} catch (IOException e) {
			System.err.println("server: " + e);
		}
	}
}
